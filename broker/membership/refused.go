package membership

import (
	"context"
	"errors"
	"net"
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

// watch is the connection held to one other broker's listener.
type watch struct {
	member Member
	cancel context.CancelFunc
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
		m.watches[id] = &watch{member: mem, cancel: cancel}
		m.watchers.Add(1)
		go func() {
			defer m.watchers.Done()
			m.watchListener(ctx, mem)
		}()
	}
}

// watchListener holds a connection to mem's Kafka listener until ctx
// ends, dialling again whenever it breaks, and marks mem refused when a
// dial is refused after one has been accepted.
func (m *Membership) watchListener(ctx context.Context, mem Member) {
	accepted := false
	for ctx.Err() == nil {
		d := net.Dialer{Timeout: 2 * m.cfg.ProbeInterval}
		conn, err := d.DialContext(ctx, "tcp", mem.Addr)
		switch {
		case err == nil:
			accepted = true
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
