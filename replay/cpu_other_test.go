//go:build !linux

package replay_test

import "time"

// processCPU is not measured here: benchmarks leave out their CPU metrics.
func processCPU() time.Duration { return 0 }
