package membership

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// Gossip declares a silent broker dead after a few probe intervals, about
// a second: it cannot tell a crashed process from a slow network, so it
// waits. A crash on a live machine leaves a surer sign at once: the
// kernel closes the dead process's connections, and nothing listens on
// its port any more, so a new connection is refused. Each broker holds an
// idle connection to every other broker's Kafka listener; when it breaks,
// the broker dials again, and a refusal takes the other out of Alive at
// once, without waiting for gossip. The controller then moves its
// leaderships within milliseconds of the crash, before a client that lost
// its connection asks for metadata (franz-go asks once at once, and then
// not again for metadata.min.age, 5 s).
//
// Only a refusal counts. A time-out, a reset, a paused process (SIGSTOP:
// the kernel still accepts connections for it) or a network partition
// prove nothing, and are left to gossip. And only a refusal after the
// listener has been seen accepting, in the same life of the broker (its
// incarnation): a broker that gossips before its listener opens is not
// dead. A refused broker stays out of Alive until gossip brings it back
// with a new incarnation (it started again) or its listener accepts a
// connection again in the same life.
//
// The goroutine holding a connection learns of the crash when the
// scheduler runs it, which under load can be after a client has seen its
// own connection break, been refused, and asked for metadata. Recheck
// lets the broker answering that client look at the connections itself.

// watch is the connection held to one other broker's listener.
type watch struct {
	member Member
	cancel context.CancelFunc
	// conn is the connection held, nil between dials.
	conn atomic.Pointer[net.TCPConn]
}

// watchMembers starts a watch on every other alive member that has none
// for its current life, and stops those of members gone or changed. The
// caller holds m.mu.
func (m *Membership) watchMembers() {
	for id, w := range m.watches {
		if cur, ok := m.alive[id]; !ok || cur != w.member {
			w.cancel()
			delete(m.watches, id)
		}
	}
	for id, mem := range m.alive {
		if id == m.cfg.Self.ID || mem.Addr == "" || m.watches[id] != nil || m.closing {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		w := &watch{member: mem, cancel: cancel}
		m.watches[id] = w
		m.watchers.Add(1)
		go func() {
			defer m.watchers.Done()
			m.watchListener(ctx, w)
		}()
	}
}

// watchListener holds a connection to the watched member's Kafka
// listener until ctx ends, dialling again whenever it breaks, and marks
// the member refused when a dial is refused after one has been accepted.
func (m *Membership) watchListener(ctx context.Context, w *watch) {
	mem := w.member
	accepted := false
	for ctx.Err() == nil {
		d := net.Dialer{Timeout: 2 * m.cfg.ProbeInterval}
		conn, err := d.DialContext(ctx, "tcp", mem.Addr)
		switch {
		case err == nil:
			accepted = true
			m.setRefused(mem, false)
			since := time.Now()
			w.conn.Store(conn.(*net.TCPConn))
			waitClosed(ctx, conn)
			w.conn.Store(nil)
			if time.Since(since) >= m.cfg.ProbeInterval {
				continue // held a while, then broken: dial again at once
			}
			// Closed as soon as accepted (a broker shutting down, or
			// closing idle connections): not a loop of dials.
		case errors.Is(err, syscall.ECONNREFUSED) && accepted:
			m.setRefused(mem, true)
		}
		select {
		case <-ctx.Done():
		case <-time.After(m.cfg.ProbeInterval):
		}
	}
}

// waitClosed blocks until conn breaks (the peer closed it, or died) or
// ctx ends, and closes it. The peer sends nothing on it: a read returns
// only when it breaks.
func waitClosed(ctx context.Context, conn net.Conn) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var b [1]byte
	for {
		if _, err := conn.Read(b[:]); err != nil {
			conn.Close()
			return
		}
	}
}

// recheckDialTimeout bounds Recheck's dial to a broker whose connection
// broke: on one machine a refusal is immediate, and a dial that takes
// longer proves nothing (the watch goes on dialling).
const recheckDialTimeout = 100 * time.Millisecond

// Recheck looks now at the connections held to the listeners of the given
// brokers, rather than waiting for the goroutines that hold them to run:
// one that has broken is dialled again at once, and a refusal takes its
// broker out of Alive before Recheck returns. It reports whether any was
// taken out. A broker about to name others to a client (the leaders in a
// Metadata answer) calls it: that client may have seen a leader's crash,
// and been refused, a moment before this broker's watch noticed.
func (m *Membership) Recheck(ctx context.Context, ids []int32) bool {
	gone := false
	for _, id := range ids {
		m.mu.Lock()
		w := m.watches[id]
		m.mu.Unlock()
		if w == nil {
			continue
		}
		// Only a connection held proves the listener accepted in this
		// life; between dials the watch itself is deciding.
		if c := w.conn.Load(); c == nil || !broken(c) {
			continue
		}
		d := net.Dialer{Timeout: recheckDialTimeout}
		conn, err := d.DialContext(ctx, "tcp", w.member.Addr)
		if err == nil {
			conn.Close()
			continue
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			m.setRefused(w.member, true)
			gone = true
		}
	}
	return gone
}

// setRefused marks mem, in its current life, refused or not, and tells
// whoever waits on Changed when that changes Alive.
func (m *Membership) setRefused(mem Member, refused bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := m.watches[mem.ID]; w == nil || w.member != mem {
		return // a watch of a life gossip has moved past, ending
	}
	was := m.refused[mem.ID] == mem
	if refused == was {
		return
	}
	if refused {
		m.refused[mem.ID] = mem
		m.log.Info("membership: broker's listener refuses connections; it is gone", "broker", mem.ID, "addr", mem.Addr)
	} else {
		delete(m.refused, mem.ID)
		m.log.Info("membership: broker's listener accepts connections again", "broker", mem.ID)
	}
	if cur, ok := m.alive[mem.ID]; ok && cur == mem {
		m.notify()
	}
}
