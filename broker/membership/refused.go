package membership

import (
	"context"
	"errors"
	"net"
	"sync"
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
// The goroutine holding a connection learns of the crash when its
// connection breaks and the scheduler runs it, which can be after a
// client has seen its own connection break and asked for metadata.
// Recheck lets the broker answering that client dial the leaders itself.

// watch is the connection held to one other broker's listener.
type watch struct {
	member Member
	cancel context.CancelFunc
	// accepted is set once the listener has accepted a connection in
	// this life: from then on a refusal means the broker is gone.
	accepted atomic.Bool
	// probing guards waiting, Recheck's probes that wait for the next dial
	// of the listener, and dialling, whether a goroutine makes those dials.
	probing  sync.Mutex
	waiting  []chan bool
	dialling bool
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
			w.accepted.Store(true)
			m.setRefused(mem, false)
			since := time.Now()
			waitClosed(ctx, conn)
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

// recheckDialTimeout bounds Recheck's dial: on one machine, or a LAN, a
// refusal comes within a round trip, and a dial that takes longer proves
// nothing (the watch goes on watching).
const recheckDialTimeout = 100 * time.Millisecond

// Recheck dials, now, the listeners of the given brokers, rather than
// trusting the connections held to them: a refusal takes its broker out of
// Alive before Recheck returns. It reports whether any was taken out. A
// broker about to name others to a client (the leaders in a Metadata
// answer) calls it: that client may have just seen a leader's crash. A
// killed process's connections close one by one as the kernel tears it
// down; the client's may break, and the client ask for metadata, a moment
// before this broker's held connection breaks, but the listener, opened
// first, is closed first: a dial is refused already. The dials go out
// together, and the Rechecks of one broker that come while a dial is out
// share the next one (every client of a failed broker asks at once).
func (m *Membership) Recheck(ctx context.Context, ids []int32) bool {
	var gone atomic.Bool
	var wg sync.WaitGroup
	for _, id := range ids {
		m.mu.Lock()
		w := m.watches[id]
		m.mu.Unlock()
		// Only a watch that has been accepted in this life makes a refusal
		// mean the broker is gone; before, the watch itself is deciding.
		if w == nil || !w.accepted.Load() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if m.probe(ctx, w) {
				gone.Store(true)
			}
		}()
	}
	wg.Wait()
	return gone.Load()
}

// probe waits for a dial of w's listener that starts after it was asked,
// and reports whether it was refused (the member is then marked so).
func (m *Membership) probe(ctx context.Context, w *watch) bool {
	answer := make(chan bool, 1)
	w.probing.Lock()
	w.waiting = append(w.waiting, answer)
	if !w.dialling {
		w.dialling = true
		go m.dialForProbes(w)
	}
	w.probing.Unlock()
	select {
	case refused := <-answer:
		return refused
	case <-ctx.Done():
		return false
	}
}

// dialForProbes dials w's listener for the probes waiting, then again for
// those that came meanwhile, until none waits.
func (m *Membership) dialForProbes(w *watch) {
	for {
		w.probing.Lock()
		waiting := w.waiting
		w.waiting = nil
		if len(waiting) == 0 {
			w.dialling = false
			w.probing.Unlock()
			return
		}
		w.probing.Unlock()
		d := net.Dialer{Timeout: recheckDialTimeout}
		conn, err := d.Dial("tcp", w.member.Addr)
		refused := errors.Is(err, syscall.ECONNREFUSED)
		if err == nil {
			conn.Close()
		}
		if refused {
			m.setRefused(w.member, true)
		}
		for _, answer := range waiting {
			answer <- refused
		}
	}
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
