// Package deploy holds no code: its tests check the files that run pgpollwatch in production
// (systemd unit, container build, Kubernetes example) against the binary they start.
package deploy
