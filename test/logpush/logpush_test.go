// Package logpush runs Cloudflare Logpush end to end through the real
// agent binary: the repository's Logpush-faithful pusher (validation
// request, header_* parameters as headers, gzip NDJSON uploads of realistic
// records, retries with backoff on anything but 2xx) pushes to siemship's
// logpush source, which ships to the strict LogScale receiver and the
// strict Taegis-style HTTP ingest receiver. The agent is SIGKILLed mid-request
// and while the sinks are down; every record the pusher was answered 200
// for must be at every sink, and duplicates are counted.
package logpush

import (
	"context"
	"testing"
	"time"

	emulator "github.com/siemship/siemship/internal/emulators/logscale"
)

func logscaleEnv() []string { return []string{"SIEMSHIP_LOGSCALE_TOKEN=" + sinkToken} }
func ingestEnv() []string   { return []string{"SIEMSHIP_SINKS_TAEGIS_TOKEN=" + sinkToken} }

// Three Logpush jobs (http_requests in unixnano, firewall_events in
// rfc3339 without Content-Encoding, gateway_dns in unix) over plain HTTP to
// LogScale: every record arrives once, byte for byte, typed by its dataset
// and stamped with its own time; the validation requests emit nothing.
func TestLogpushToLogScale(t *testing.T) {
	rec := newRecorder()
	ls := newLogScale(t, rec)
	a := newAgent(t, rec, agentOptions{sinks: "sinks:\n" + ls.config(), env: logscaleEnv()})
	a.start()
	const uploads, per = 6, 500
	ps := a.startPush(uploads, per, 2)
	ps.wait(t, 2*time.Minute)
	a.terminate()
	acked := ps.acked()
	if len(acked) != len(jobs)*uploads*per {
		t.Errorf("%d records answered 200, want %d", len(acked), len(jobs)*uploads*per)
	}
	if dups := rec.check(t, acked, "logscale"); dups != 0 {
		t.Errorf("%d duplicates without a fault or a kill", dups)
	}
	a.deadLetters()
	t.Logf("pusher: %s", ps.stats())
}

// HTTPS with a certificate from a CA made in the test, which is all the
// pusher trusts, to the Taegis-style HTTP ingest sink. A job with a wrong
// secret cannot even be created (its validation request is refused).
func TestLogpushOverTLSToHTTPIngest(t *testing.T) {
	rec := newRecorder()
	hi := newIngest(t, rec)
	a := newAgent(t, rec, agentOptions{tls: true, sinks: "sinks:\n" + hi.config(), env: ingestEnv()})
	a.start()

	if err := a.job("http_requests", "not-the-secret", false).Validate(context.Background()); err == nil {
		t.Error("a job with a wrong secret passed its validation request")
	}

	const uploads, per = 6, 500
	ps := a.startPush(uploads, per, 2)
	ps.wait(t, 2*time.Minute)
	a.terminate()
	acked := ps.acked()
	if len(acked) != len(jobs)*uploads*per {
		t.Errorf("%d records answered 200, want %d", len(acked), len(jobs)*uploads*per)
	}
	if dups := rec.check(t, acked, "http"); dups != 0 {
		t.Errorf("%d duplicates without a fault or a kill", dups)
	}
	a.deadLetters()
	t.Logf("pusher: %s", ps.stats())
}

// SIGKILL mid-request, three times: a third of LogScale's answers take
// 1.5 s, so pushes sit in the agent half delivered when it dies. The pusher
// gets no answer for them and pushes them again to the next session: no
// record answered 200 is missing; what a killed session had delivered of an
// unanswered push arrives twice.
func TestSIGKILLMidRequest(t *testing.T) {
	rec := newRecorder()
	ls := newLogScale(t, rec)
	ls.srv.SetFaults(emulator.Faults{Rate: 0.3, Seed: 3, SlowDelay: 1500 * time.Millisecond,
		Kinds: []emulator.FaultKind{emulator.FaultSlow}})
	a := newAgent(t, rec, agentOptions{sinks: "sinks:\n" + ls.config(), env: logscaleEnv()})
	a.start()
	const uploads, per, kills = 24, 400, 3
	ps := a.startPush(uploads, per, 2)
	for range kills {
		// Mid-request: this session delivered part of what it was pushed
		// and pushes are still waiting for their answers.
		waitFor(t, "the session delivered records with pushes in flight", time.Minute, func() bool {
			if ps.left.Load() == 0 {
				t.Fatalf("every push was answered before the kills (%s): push more or slow the sink", ps.stats())
			}
			return rec.deliveredIn("logscale") >= 300
		})
		a.sigkill()
		a.start()
	}
	ls.srv.SetFaults(emulator.Faults{})
	ps.wait(t, 2*time.Minute)
	a.terminate()

	acked := ps.acked()
	if len(acked) != len(jobs)*uploads*per {
		t.Errorf("%d records answered 200, want %d", len(acked), len(jobs)*uploads*per)
	}
	dups := rec.check(t, acked, "logscale")
	if ps.count(0) == 0 {
		t.Errorf("no push was cut by a kill (%s): the kills did not hit a request", ps.stats())
	}
	a.deadLetters()
	t.Logf("%d SIGKILLs, %d duplicates (%.0f per SIGKILL); pusher: %s", kills, dups, float64(dups)/kills, ps.stats())
}

// Both sinks down: LogScale refuses connections and the HTTP ingest
// receiver answers 503 to everything. The agent answers pushes 503 at its
// response deadline (Logpush retries), is SIGKILLed twice while the sinks
// are down, and when they return every record answered 200 is at both.
func TestSIGKILLWhileSinksDown(t *testing.T) {
	rec := newRecorder()
	ls := newLogScale(t, rec)
	hi := newIngest(t, rec)
	env := append(logscaleEnv(), ingestEnv()...)
	a := newAgent(t, rec, agentOptions{sinks: "sinks:\n" + ls.config() + hi.config(), env: env, responseTimeout: 2 * time.Second})
	a.start()
	const uploads, per = 8, 300
	ps := a.startPush(uploads, per, 2)
	waitFor(t, "a push answered 200 with both sinks up", time.Minute, func() bool { return len(ps.acked()) > 0 })

	ls.down()
	hi.srv.Faults().FailNext(1_000_000, 503, "1")
	for kill := 1; kill <= 2; kill++ {
		before := ps.count(503)
		waitFor(t, "the agent answered a push 503 (no delivery by the deadline)", time.Minute, func() bool { return ps.count(503) > before })
		a.sigkill()
		a.start()
	}
	ls.up()
	hi.srv.Faults().Reset()
	ps.wait(t, 2*time.Minute)
	a.terminate()

	acked := ps.acked()
	if len(acked) != len(jobs)*uploads*per {
		t.Errorf("%d records answered 200, want %d", len(acked), len(jobs)*uploads*per)
	}
	dups := rec.check(t, acked, "logscale", "http")
	a.deadLetters()
	t.Logf("2 SIGKILLs while the sinks were down, %d duplicates over both sinks; pusher: %s", dups, ps.stats())
}
