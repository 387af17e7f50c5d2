package syslog

// A RELP client (Reliable Event Logging Protocol, rsyslog's imrelp; see
// https://www.rsyslog.com/doc/relp.html and librelp's doc/relp.html).
// Written here because no Go RELP library is obtainable: none is published
// that the module proxy serves, and librelp is C.
//
// Wire format: every frame is
//
//	TXNR SP COMMAND SP DATALEN [SP DATA] LF
//
// The client opens with "open" and its offers (relp_version, relp_software,
// commands=syslog), sends one "syslog" frame per message with increasing
// transaction numbers, and the server answers each with "rsp" carrying
// "200 OK" (or "500 reason"). At most relp_window frames wait for an answer.
// "close" ends the session; the server may announce its own end with
// "serverclose" (transaction number 0). Frames not answered 200 when the
// session ends are sent again on the next one.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/siemship/siemship/internal/event"
)

const (
	relpMaxTxnr   = 999_999_999 // then it wraps to 1 (RELP spec)
	relpMaxHeader = 64          // TXNR SP COMMAND SP DATALEN SP, generously
	// relpMaxRsp bounds an answer's data: a status line and offers.
	relpMaxRsp  = 64 << 10
	relpOffers  = "relp_version=0\nrelp_software=siemship,1,https://github.com/siemship/siemship\ncommands=syslog"
	relpVersion = "0"
)

// relpFrame is one frame read from the server.
type relpFrame struct {
	txnr int
	cmd  string
	data []byte
}

// code returns the status code of an rsp frame and the rest of its first
// line.
func (f *relpFrame) code() (int, string) {
	line, _, _ := bytes.Cut(f.data, []byte{'\n'})
	num, text, _ := bytes.Cut(line, []byte{' '})
	n, err := strconv.Atoi(string(num))
	if err != nil {
		return 0, string(line)
	}
	return n, string(text)
}

// readRELPFrame reads one frame.
func readRELPFrame(r *bufio.Reader) (relpFrame, error) {
	var f relpFrame
	txnr, err := readToken(r, ' ', 9)
	if err != nil {
		return f, fmt.Errorf("read RELP frame: transaction number: %w", err)
	}
	if f.txnr, err = strconv.Atoi(txnr); err != nil {
		return f, fmt.Errorf("read RELP frame: transaction number %q", txnr)
	}
	if f.cmd, err = readToken(r, ' ', 32); err != nil {
		return f, fmt.Errorf("read RELP frame %d: command: %w", f.txnr, err)
	}
	// DATALEN ends with SP before data, or with the trailer when it is 0.
	var num []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			return f, fmt.Errorf("read RELP frame %d: data length: %w", f.txnr, err)
		}
		if c == ' ' || c == '\n' {
			n, err := strconv.Atoi(string(num))
			if err != nil || n < 0 || n > relpMaxRsp {
				return f, fmt.Errorf("read RELP frame %d: data length %q", f.txnr, num)
			}
			if n > 0 {
				if c != ' ' {
					return f, fmt.Errorf("read RELP frame %d: data length %d without data", f.txnr, n)
				}
				f.data = make([]byte, n)
				if _, err := io.ReadFull(r, f.data); err != nil {
					return f, fmt.Errorf("read RELP frame %d: data: %w", f.txnr, err)
				}
			}
			if c == ' ' {
				if t, err := r.ReadByte(); err != nil || t != '\n' {
					return f, fmt.Errorf("read RELP frame %d: missing trailer", f.txnr)
				}
			}
			return f, nil
		}
		if c < '0' || c > '9' || len(num) >= 9 {
			return f, fmt.Errorf("read RELP frame %d: bad data length", f.txnr)
		}
		num = append(num, c)
	}
}

// readToken reads up to max bytes until sep (not included).
func readToken(r *bufio.Reader, sep byte, max int) (string, error) {
	var tok []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && len(tok) == 0 {
				return "", errClosed
			}
			return "", err
		}
		if c == sep {
			if len(tok) == 0 {
				return "", errors.New("empty field")
			}
			return string(tok), nil
		}
		if len(tok) >= max || c < '!' || c > '~' {
			return "", fmt.Errorf("unexpected byte %q", c)
		}
		tok = append(tok, c)
	}
}

// relpSession is the per-connection RELP state.
type relpSession struct {
	br   *bufio.Reader
	rsp  chan relpFrame // frames read after the open
	quit chan struct{}  // closed when the connection closes
	next int            // next transaction number
}

func appendRELPHeader(dst []byte, txnr int, cmd string, n int) []byte {
	dst = strconv.AppendInt(dst, int64(txnr), 10)
	dst = append(dst, ' ')
	dst = append(dst, cmd...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(n), 10)
	if n > 0 {
		dst = append(dst, ' ')
	}
	return dst
}

// relpOpen opens the session on c and starts its reader.
func (s *Sink) relpOpen(c *conn) error {
	rs := &relpSession{br: bufio.NewReaderSize(c.c, 16<<10), rsp: make(chan relpFrame, s.cfg.RELPWindow+2),
		quit: make(chan struct{}), next: 2}
	frame := appendRELPHeader(nil, 1, "open", len(relpOffers))
	frame = append(append(frame, relpOffers...), '\n')
	if _, err := c.write(frame, s.cfg.DialTimeout); err != nil {
		return fmt.Errorf("RELP open to %s: %w", s.cfg.Address, err)
	}
	if err := c.c.SetReadDeadline(time.Now().Add(s.cfg.DialTimeout)); err != nil {
		return fmt.Errorf("RELP open to %s: %w", s.cfg.Address, err)
	}
	f, err := readRELPFrame(rs.br)
	if err != nil {
		return fmt.Errorf("RELP open to %s: %w", s.cfg.Address, err)
	}
	if err := c.c.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("RELP open to %s: %w", s.cfg.Address, err)
	}
	code, _ := f.code()
	if f.txnr != 1 || f.cmd != "rsp" || code != 200 {
		return fmt.Errorf("RELP open to %s refused: %d %s %q", s.cfg.Address, f.txnr, f.cmd, f.data)
	}
	if !relpOffered(f.data, "commands", "syslog") {
		return fmt.Errorf("RELP open to %s: the server does not offer the syslog command (offers %q)", s.cfg.Address, f.data)
	}
	if !relpOffered(f.data, "relp_version", relpVersion) {
		return fmt.Errorf("RELP open to %s: unsupported relp_version (offers %q)", s.cfg.Address, f.data)
	}
	c.relp = rs
	c.onClose = func() { close(rs.quit) }
	c.watch(func(c *conn) error {
		for {
			f, err := readRELPFrame(rs.br)
			if err != nil {
				return err
			}
			select {
			case rs.rsp <- f:
			case <-rs.quit:
				return errClosed
			}
		}
	})
	return nil
}

// relpOffered says whether the open answer's offers give name the value v
// (values are comma-separated).
func relpOffered(data []byte, name, v string) bool {
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		k, vals, ok := bytes.Cut(line, []byte{'='})
		if !ok || string(k) != name {
			continue
		}
		for val := range bytes.SplitSeq(vals, []byte{','}) {
			if string(val) == v {
				return true
			}
		}
	}
	return false
}

// relpClose ends the session politely, waiting briefly for the answer.
func (s *Sink) relpClose(c *conn) {
	rs := c.relp
	frame := appendRELPHeader(s.wbuf[:0], rs.next, "close", 0)
	frame = append(frame, '\n')
	if _, err := c.write(frame, s.cfg.WriteTimeout); err != nil {
		return
	}
	t := time.NewTimer(s.cfg.DialTimeout)
	defer t.Stop()
	for {
		select {
		case f := <-rs.rsp:
			if f.txnr == rs.next {
				return
			}
		case <-c.dead:
			return
		case <-t.C:
			return
		}
	}
}

// runRELP is Run for relp.
func (s *Sink) runRELP(ctx context.Context, in <-chan *event.Batch) error {
	var c *conn
	defer func() {
		if c != nil {
			c.close()
			s.m.connections.Set(0)
		}
	}()
	q := &s.q
	window := s.cfg.RELPWindow
	inOpen, everConnected := true, false
	ackTimer := time.NewTimer(time.Hour)
	defer ackTimer.Stop()
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !inOpen && q.len() == 0 {
			if c != nil {
				s.relpClose(c)
			}
			return nil
		}
		if c == nil {
			var err error
			if c, err = s.connect(ctx, everConnected); err != nil {
				return err
			}
			everConnected = true
		}
		if q.unsent() > 0 && q.inflight() < window {
			if err := s.writeRELP(c, window); err != nil {
				s.drop(c, "write", err)
				c = nil
				continue
			}
		}
		// An answer overdue: the receiver hangs or the path is dead.
		if q.inflight() > 0 {
			wait := s.cfg.AckTimeout - time.Since(q.ents[q.head].sentAt)
			if wait <= 0 {
				s.drop(c, "ack", fmt.Errorf("no RELP answer for transaction %d within %s", q.ents[q.head].txnr, s.cfg.AckTimeout))
				c = nil
				continue
			}
			ackTimer.Reset(wait)
		}
		var inC <-chan *event.Batch
		if inOpen && q.unsent() < window {
			inC = in
		}
		select {
		case b, ok := <-inC:
			if !ok {
				inOpen = false
				continue
			}
			s.enqueue(b)
		case f := <-c.relp.rsp:
			if err := s.relpAnswer(f); err != nil {
				s.drop(c, "ack", err)
				c = nil
			}
		case <-c.dead:
			s.drop(c, "closed", c.deadEr)
			c = nil
		case <-ackTimer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// writeRELP sends unsent messages as syslog frames while the window has
// room, several frames per write call.
func (s *Sink) writeRELP(c *conn, window int) error {
	q := &s.q
	rs := c.relp
	for q.unsent() > 0 && q.inflight() < window {
		s.wbuf = s.wbuf[:0]
		first := q.sent
		last := first
		for last < len(q.ents) && last-q.head < window && (last == first || len(s.wbuf) < writeChunk) {
			e := &q.ents[last]
			e.txnr = rs.next
			if rs.next++; rs.next > relpMaxTxnr {
				rs.next = 1
			}
			s.wbuf = appendRELPHeader(s.wbuf, e.txnr, "syslog", e.n)
			s.wbuf = append(s.wbuf, q.msg(last)...)
			s.wbuf = append(s.wbuf, '\n')
			last++
		}
		n, err := c.write(s.wbuf, s.cfg.WriteTimeout)
		s.m.bytesSent.Add(float64(n))
		if err != nil {
			return fmt.Errorf("write to %s: %w", s.cfg.Address, err)
		}
		now := time.Now()
		for i := first; i < last; i++ {
			q.ents[i].sentAt = now
		}
		q.sent = last
		s.m.messagesSent.Add(float64(last - first))
		s.m.unacked.Set(float64(q.inflight()))
	}
	return nil
}

// relpAnswer handles one frame from the server: an answer to a syslog
// frame, or the server's announcement that it closes.
func (s *Sink) relpAnswer(f relpFrame) error {
	if f.cmd == "serverclose" {
		return errors.New("the receiver closed the RELP session (serverclose)")
	}
	if f.cmd != "rsp" {
		return fmt.Errorf("unexpected RELP command %q from the receiver", f.cmd)
	}
	q := &s.q
	i := q.head
	for i < q.sent && q.ents[i].txnr != f.txnr {
		i++
	}
	if i == q.sent {
		return fmt.Errorf("RELP answer for unknown transaction %d", f.txnr)
	}
	if code, text := f.code(); code != 200 {
		// The receiver refused the message (its queue is full, it cannot
		// write): resend on a new session after a backoff rather than drop.
		return fmt.Errorf("the receiver answered transaction %d with %d %s", f.txnr, code, text)
	}
	q.ents[i].acked = true
	n := 0
	for j := q.head; j < q.sent && q.ents[j].acked; j++ {
		n++
	}
	s.delivered(n)
	s.m.unacked.Set(float64(q.inflight()))
	return nil
}
