package proxy

// What the external tests (package proxy_test) share with the internal ones.
var SendWithFIN = sendWithFIN
