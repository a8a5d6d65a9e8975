package tests

import "time"

// The pipeline's constants that the tests count with. errmon does not
// export them; the root's TestMirroredConstants fails when one of them
// changes without its value here.
const (
	writeBatchSize   = 128              // errors per write transaction (pipeline.go)
	maxWriteFailures = 5                // rejected writes before an error is given up (pipeline.go)
	flushTimeout     = 30 * time.Second // the bound of one writer pass (pipeline.go)
	alertAttempts    = 4                // tries of one alert or ticket (notify.go)
	// laneBlocked is the text of the error of a delivery not attempted
	// because an earlier call never returned (notify.go's errLaneBlocked).
	laneBlocked = "still blocked in an earlier call that ignored its context"
)
