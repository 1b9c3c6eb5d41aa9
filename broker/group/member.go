package group

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Protocol is one assignor a member supports ("range", "cooperative-sticky",
// ...) with the member's metadata for it: its subscribed topics, encoded by
// the client. The coordinator never decodes it; it hands it to the leader.
type Protocol struct {
	Name     string
	Metadata []byte
}

// member is one consumer in a group. Only Group's methods touch it, under
// Group.mu.
type member struct {
	id         string
	instanceID string // group.instance.id (KIP-345); "" for a dynamic member
	clientID   string
	clientHost string
	// sessionTimeout is how long the member may go without a heartbeat.
	sessionTimeout time.Duration
	// rebalanceTimeout is max.poll.interval.ms (KIP-62): how long a
	// rebalance waits for this member to rejoin.
	rebalanceTimeout time.Duration
	protocols        []Protocol // in the member's order of preference
	assignment       []byte

	// sessionDeadline is when the member is removed unless it heartbeats.
	sessionDeadline time.Time
	// awaitingJoin is the waiting JoinGroup's answer, nil when none waits.
	awaitingJoin chan JoinResult
	// awaitingSync is the waiting SyncGroup's answer, nil when none waits.
	awaitingSync chan SyncResult
}

// metadataFor returns the member's metadata for the named protocol.
func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

// sameProtocols reports whether a and b list the same protocols with the
// same metadata, in the same order: a member that rejoins with what it sent
// last time needs no rebalance.
func sameProtocols(a, b []Protocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Metadata, b[i].Metadata) {
			return false
		}
	}
	return true
}

// newMemberID returns clientID-<random>, the shape of Kafka's member ids
// (clientId-UUID), so logs show whose member it is.
func newMemberID(clientID string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return clientID + "-" + hex.EncodeToString(b[:])
}
