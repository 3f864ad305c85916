//go:build !race

package media_test

import "time"

// raceSlack loosens timing checks under the race detector.
const raceSlack = 0 * time.Millisecond
