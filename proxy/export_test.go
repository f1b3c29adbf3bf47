package proxy

// What the external tests (package proxy_test) share with the internal ones.
var SendWithFIN = sendWithFIN

// IdleWorkers is how many goroutines s keeps for its next sessions: parked, not leaked.
func IdleWorkers(s *Server) int {
	s.workers.mu.Lock()
	defer s.workers.mu.Unlock()
	return len(s.workers.idle)
}
