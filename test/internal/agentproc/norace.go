//go:build !race

package agentproc

const raceEnabled = false
