package logscale

import "github.com/siemship/siemship/internal/emulators/faults"

// The fault injection is shared with the other emulators (package faults);
// these names keep the LogScale emulator's API.
type (
	// FaultKind names an injected fault; the Stats count faults by kind.
	FaultKind = faults.Kind
	// Faults configures the random fault mix.
	Faults = faults.Config
)

// Fault kinds.
const (
	Fault503      = faults.Fault503
	Fault429Retry = faults.Fault429Retry
	Fault429      = faults.Fault429
	Fault500      = faults.Fault500
	FaultSlow     = faults.FaultSlow
	FaultReset    = faults.FaultReset
	FaultFailNext = faults.FaultFailNext
)

// SetFaults replaces the random fault mix. Safe to call while serving.
// It panics on an unknown kind.
func (s *Server) SetFaults(cfg Faults) { s.faults.Set(cfg) }

// FailNext answers the next n ingest requests (after auth) with status and,
// if retryAfter is not empty, a Retry-After header. Status 0 resets the
// connection instead of answering. Nothing of those requests is stored.
func (s *Server) FailNext(n int, status int, retryAfter string) {
	s.faults.FailNext(n, status, retryAfter)
}
