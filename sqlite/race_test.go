//go:build race

package sqlite

// raceDetector: the tests run under -race, where SQLite compiled to Go is
// about forty times slower; long randomized tests take fewer steps.
const raceDetector = true
