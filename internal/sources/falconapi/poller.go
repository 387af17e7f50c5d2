package falconapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"

	"github.com/siemship/siemship/internal/ack"
	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/falcon"
)

// settle is how far behind the server's clock (the Date of the listing
// answer) a record's timestamp must be before it may raise the high-water
// mark. A record updated after the listing, or while the answer was being
// made, carries a later timestamp: counting it would move the mark past
// versions the listing could not show. Such records are shipped, remembered
// in memory and not shipped again, and count once they are old enough.
const settle = 2 * time.Second

// maxOffset is Falcon's bound on offset+limit of the offset endpoints.
const maxOffset = 10000

// maxRestarts bounds how often one poll starts over because records moved
// while it paged by offset; the next poll tries again from the mark.
const maxRestarts = 10

var (
	errGone          = errors.New("resource removed by Falcon")
	errAfterExpired  = errors.New("after token expired")
	errOffsetTooDeep = errors.New("more records at one timestamp than offset paging reaches")
	errKeptMoving    = errors.New("records kept moving while paging by offset")
)

// poller polls one resource. Its fields are used by its own goroutine only,
// except the tracker and the atomics.
type poller struct {
	spec    spec
	src     *Source
	log     *slog.Logger
	extra   string // FQL ANDed to the incremental filter
	tracker ack.Tracker[Position]

	pos   Position  // the high-water mark handed out (not yet committed, maybe)
	posT  time.Time // pos.Timestamp parsed
	seen  map[string]bool
	ahead map[string]time.Time // shipped, not yet counted in pos: id → its timestamp (saved in Position.Ahead)

	disabled atomic.Bool
	lastErr  atomic.Pointer[string]
	records  atomic.Int64
}

func newPoller(src *Source, sp spec) *poller {
	return &poller{spec: sp, src: src, log: src.log.With("resource", sp.name), extra: src.cfg.Filter[sp.name],
		ahead: map[string]time.Time{}}
}

// start places the poller at pos, before its goroutine runs.
func (p *poller) start(pos Position) {
	p.setPos(pos)
	p.tracker.Start(pos)
}

func (p *poller) setPos(pos Position) {
	p.pos, p.posT = Position{Timestamp: pos.Timestamp, IDs: pos.IDs}, pos.time()
	p.seen = make(map[string]bool, len(pos.IDs))
	for _, id := range pos.IDs {
		p.seen[id] = true
	}
	// At exactly the mark too: shipped before it settled, not yet among
	// the mark's ids (see advance). An entry that does not parse (the
	// agent writes them; only a hand edit breaks one) is forgotten: that
	// record is shipped again, never skipped.
	for id, ts := range pos.Ahead {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil && !t.Before(p.posT) {
			p.ahead[id] = t
		}
	}
}

// maxAheadSaved bounds the delivered records above the mark a checkpoint
// remembers (a ConfigMap holds at most 1 MiB for every source). Beyond it
// a restart ships the others again: duplicates, never loss.
const maxAheadSaved = 500

// position is what a batch commits: the mark, plus the records above it
// that were shipped by then, so that a restart does not ship them again.
func (p *poller) position() Position {
	pos := Position{Timestamp: p.pos.Timestamp, IDs: slices.Clip(p.pos.IDs)}
	if len(p.ahead) == 0 {
		return pos
	}
	pos.Ahead = make(map[string]string, min(len(p.ahead), maxAheadSaved))
	for id, t := range p.ahead {
		if len(pos.Ahead) == maxAheadSaved {
			break
		}
		pos.Ahead[id] = t.Format(time.RFC3339Nano)
	}
	return pos
}

// run polls every interval until ctx ends or the resource is removed.
func (p *poller) run(ctx context.Context, out chan<- *event.Batch) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.src.m.polls.WithLabelValues(p.spec.name).Inc()
		err := p.poll(ctx, out)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			p.lastErr.Store(nil)
		case errors.Is(err, errGone):
			// Not a crash loop: one error, a metric, and the others go on.
			msg := fmt.Sprintf("Falcon removed the %s API (CrowdStrike announced it for March 2026): resource %s disabled until restart; drop it from resources (alerts carry the same detections)", p.spec.name, p.spec.name)
			p.log.Error(msg, "error", err)
			p.lastErr.Store(&msg)
			p.disabled.Store(true)
			p.src.m.errors.WithLabelValues(p.spec.name, "gone").Inc()
			p.src.m.disabled.WithLabelValues(p.spec.name).Set(1)
			return
		case errors.Is(err, falcon.ErrMissingScope):
			msg := err.Error()
			p.lastErr.Store(&msg)
			p.log.Error("cannot poll "+p.spec.name+": enable the API scope "+strconv.Quote(p.spec.scope)+" for this API client; retrying every interval", "error", err)
			p.src.m.errors.WithLabelValues(p.spec.name, "scope").Inc()
		default:
			msg := err.Error()
			p.lastErr.Store(&msg)
			// Network trouble and 5xx pass; the next poll resumes at the mark.
			p.log.Warn("poll failed, retrying at the next interval", "error", err)
			p.src.m.errors.WithLabelValues(p.spec.name, "other").Inc()
		}
		t.Reset(p.src.cfg.Interval)
	}
}

// poll lists ids from the high-water mark and ships their details until the
// listing is exhausted.
func (p *poller) poll(ctx context.Context, out chan<- *event.Batch) error {
	offset, after := 0, ""
	last := "" // offset paging: the last id of the previous page, first on this one
	restarts := 0
	filter := p.filter()
	for {
		ids, next, date, err := p.list(ctx, filter, offset, after)
		if errors.Is(err, errAfterExpired) {
			// The cursor is gone; the high-water mark is not: start over from it.
			p.src.m.expired.WithLabelValues(p.spec.name).Inc()
			p.log.Info("after token expired, restarting the query from the high-water mark", "timestamp", p.pos.Timestamp)
			offset, after, filter = 0, "", p.filter()
			continue
		}
		if err != nil {
			return err
		}
		listed := len(ids)
		if last != "" {
			if listed == 0 || ids[0] != last {
				// Records before the offset moved (updated while paging, so now
				// at the end): the rest slid towards the start and paging on
				// would skip as many. Start over from the mark; the ids at it
				// are known.
				if restarts++; restarts > maxRestarts {
					return fmt.Errorf("%s at %s: %w", p.spec.name, p.pos.Timestamp, errKeptMoving)
				}
				p.log.Debug("records moved while paging by offset, restarting the query from the high-water mark", "timestamp", p.pos.Timestamp)
				offset, last, filter = 0, "", p.filter()
				continue
			}
			ids = ids[1:]
		}
		before := p.pos.Timestamp
		for chunk := range slices.Chunk(ids, min(p.spec.maxEntity, p.src.cfg.MaxBatchEvents)) {
			if err := p.ship(ctx, out, chunk, date); err != nil {
				return err
			}
		}
		switch {
		case p.spec.after && next != "":
			after = next
		case p.spec.after || listed < p.spec.maxQuery:
			return nil // everything from the mark was listed
		case p.pos.Timestamp != before:
			offset, last, filter = 0, "", p.filter() // a fresh query from the new mark
		default:
			// A full page that did not move the mark: ties at the mark or
			// records too new to count. Page on within the same query, the
			// next page overlapping this one by its last id (checked above).
			offset += listed - 1
			last = ids[len(ids)-1]
			if offset+p.spec.maxQuery > maxOffset {
				return fmt.Errorf("%s at %s: %w", p.spec.name, p.pos.Timestamp, errOffsetTooDeep)
			}
		}
	}
}

// filter is the incremental filter from the high-water mark.
func (p *poller) filter() string {
	f := p.spec.timeField + ":>='" + p.pos.Timestamp + "'"
	if p.extra != "" {
		f += "+" + p.extra
	}
	return f
}

// list runs one query; date is the server's clock at the answer.
func (p *poller) list(ctx context.Context, filter string, offset int, after string) (ids []string, next string, date time.Time, err error) {
	q := url.Values{"filter": {filter}, "limit": {strconv.Itoa(p.spec.maxQuery)}, "sort": {p.spec.timeField + p.spec.sortSep + "asc"}}
	switch {
	case after != "":
		q.Set("after", after)
	case !p.spec.after && offset > 0:
		q.Set("offset", strconv.Itoa(offset))
	}
	body, hdr, err := p.call(ctx, "query", func(base string) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, base+p.spec.queryPath+"?"+q.Encode(), nil)
	})
	if err != nil {
		var ae *falcon.APIError
		if after != "" && errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
			// Inferred: Falcon refuses an expired cursor with 400.
			return nil, "", time.Time{}, errAfterExpired
		}
		return nil, "", time.Time{}, err
	}
	var env struct {
		Meta struct {
			Pagination struct {
				After string `json:"after"`
			} `json:"pagination"`
		} `json:"meta"`
		Resources []string `json:"resources"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, "", time.Time{}, fmt.Errorf("falcon %s query: decode answer: %w", p.spec.name, err)
	}
	date, derr := http.ParseTime(hdr.Get("Date"))
	if derr != nil {
		date = time.Now()
	}
	return env.Resources, env.Meta.Pagination.After, date, nil
}

// ship fetches the details of ids and sends them as one batch whose
// position is the high-water mark after it.
func (p *poller) ship(ctx context.Context, out chan<- *event.Batch, ids []string, date time.Time) error {
	var build func(base string) (*http.Request, error)
	if p.spec.entityPost {
		payload, err := json.Marshal(map[string][]string{p.spec.idsKey: ids})
		if err != nil {
			return fmt.Errorf("encode %s ids: %w", p.spec.name, err)
		}
		build = func(base string) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+p.spec.entityPath, bytes.NewReader(payload))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
			}
			return req, err
		}
	} else {
		q := url.Values{p.spec.idsKey: ids}
		build = func(base string) (*http.Request, error) {
			return http.NewRequestWithContext(ctx, http.MethodGet, base+p.spec.entityPath+"?"+q.Encode(), nil)
		}
	}
	body, _, err := p.call(ctx, "details", build)
	if err != nil {
		return err
	}
	events, moved := p.advance(body, date.Add(-settle))
	if len(events) == 0 {
		if moved {
			p.tracker.Track(p.position())() // nothing to deliver: committed after what came before
		}
		return nil
	}
	// The events point into body: it is held until every sink delivered.
	release, err := p.src.hold(ctx, len(body))
	if err != nil {
		return err
	}
	ack := p.tracker.Track(p.position())
	b := event.NewBatch(p.src.name, events, func() { ack(); release() })
	select {
	case out <- b:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.records.Add(int64(len(events)))
	p.src.m.records.WithLabelValues(p.spec.name).Add(float64(len(events)))
	return nil
}

// advance turns a details answer into events, dropping versions already
// shipped, and raises the high-water mark with the records at or before
// settled. It reports whether the mark moved.
func (p *poller) advance(body []byte, settled time.Time) ([]event.Event, bool) {
	var events []event.Event
	moved := false
	typ := EventType(p.spec.name)
	gjson.GetBytes(body, "resources").ForEach(func(_, rec gjson.Result) bool {
		id := rec.Get(p.spec.idField).String()
		ts := rec.Get(p.spec.timeField).String()
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			p.log.Warn("record without a usable timestamp field, shipped with the time of reading", "id", id, "field", p.spec.timeField, "value", ts)
			t = time.Now()
		}
		dup := (t.Equal(p.posT) && p.seen[id]) || (p.ahead[id].Equal(t) && !p.ahead[id].IsZero())
		if !dup {
			raw := []byte(rec.Raw)
			if i, j := rec.Index, rec.Index+len(rec.Raw); i > 0 && j <= len(body) && string(body[i:j]) == rec.Raw {
				raw = body[i:j:j] // the record's bytes in body, not a copy
			}
			events = append(events, event.Event{Raw: raw, Time: t.UnixMilli(), Type: typ, Size: len(raw)})
		}
		switch {
		case t.After(settled):
			p.ahead[id] = t
		case t.After(p.posT):
			p.pos = Position{Timestamp: ts, IDs: []string{id}}
			p.posT, p.seen = t, map[string]bool{id: true}
			moved = true
		case t.Equal(p.posT) && !p.seen[id]:
			p.pos.IDs = append(slices.Clip(p.pos.IDs), id)
			p.seen[id] = true
			moved = true
		}
		return true
	})
	if moved {
		// What the mark covers is never shipped again: the records before
		// it, and those at it among its ids. A record at exactly the mark
		// but not yet among them (a later page of the same listing) is
		// still known as shipped when it comes.
		for id, t := range p.ahead {
			if t.Before(p.posT) || (t.Equal(p.posT) && p.seen[id]) {
				delete(p.ahead, id)
			}
		}
	}
	return events, moved
}

// call sends one request through the shared client and reads the answer.
func (p *poller) call(ctx context.Context, kind string, build func(base string) (*http.Request, error)) ([]byte, http.Header, error) {
	name := p.spec.name + "_" + kind
	resp, err := p.src.client.Do(ctx, name, p.spec.scope, build)
	if err != nil {
		var ae *falcon.APIError
		if p.spec.deprecated && errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusGone) {
			return nil, nil, fmt.Errorf("%w: %w", errGone, err)
		}
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := readAnswer(resp.Body, maxAnswer)
	if err != nil {
		return nil, nil, fmt.Errorf("falcon %s: %w", name, err)
	}
	return body, resp.Header, nil
}

// maxAnswer bounds one API answer; the largest real one (5,000 host
// details) is a few tens of MiB.
const maxAnswer = 256 << 20

// readAnswer reads r whole, refusing more than limit bytes: a truncated
// answer would parse as fewer records and silently skip the rest.
func readAnswer(r io.Reader, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("answer larger than %d bytes refused", limit)
	}
	return body, nil
}
