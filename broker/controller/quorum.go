package controller

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"klab.dev/klab/broker/membership"
)

// Voter is one member of a fixed metadata quorum: a broker that votes in
// the raft elections of the active controller (controller.quorum.voters).
type Voter struct {
	ID   int32
	Addr string // the broker's listener, where its raft stream is reached
}

// ParseVoters reads controller.quorum.voters, Kafka's format:
// "1@host:port,2@host:port,3@host:port". An empty value is no voters.
func ParseVoters(s string) ([]Voter, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []Voter
	for _, part := range strings.Split(s, ",") {
		idText, addr, ok := strings.Cut(strings.TrimSpace(part), "@")
		id, err := strconv.ParseInt(idText, 10, 32)
		if !ok || err != nil || id < 0 {
			return nil, fmt.Errorf("controller.quorum.voters: %q is not id@host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("controller.quorum.voters: %q: %v", part, err)
		}
		if slices.ContainsFunc(out, func(v Voter) bool { return v.ID == int32(id) }) {
			return nil, fmt.Errorf("controller.quorum.voters: node %d twice", id)
		}
		out = append(out, Voter{ID: int32(id), Addr: addr})
	}
	return out, nil
}

// bootstrapVoters starts the quorum of a new cluster with the configured
// voters, at once: no gossip is needed to know them. Only a voter
// bootstraps; any other broker waits to be added as an observer.
func (c *Controller) bootstrapVoters() {
	if !slices.ContainsFunc(c.cfg.Voters, func(v Voter) bool { return v.ID == c.cfg.ID }) {
		c.log.Info("controller: not a voter; waiting to join the metadata quorum as an observer", "voters", c.cfg.Voters)
		return
	}
	var conf raft.Configuration
	for _, v := range c.cfg.Voters {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: serverID(v.ID), Address: raft.ServerAddress(v.Addr)})
	}
	if err := c.raft.BootstrapCluster(conf).Error(); err != nil {
		c.log.Warn("controller: bootstrapping the metadata quorum", "err", err)
		return
	}
	c.log.Info("controller: metadata quorum bootstrapped from controller.quorum.voters", "voters", c.cfg.Voters)
}

// addToQuorum makes live brokers that are not in the raft configuration
// (brokers added after the cluster formed) observers — non-voting members,
// which receive the metadata log — and follows members that came back on
// another address, so that raft reaches them where they are now.
func (c *Controller) addToQuorum(alive map[int32]membership.Member) {
	f := c.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	in := map[raft.ServerID]raft.Server{}
	for _, s := range f.Configuration().Servers {
		in[s.ID] = s
	}
	for _, id := range sortedIDs(alive) {
		addr := raft.ServerAddress(alive[id].Addr)
		s, ok := in[serverID(id)]
		var err error
		switch {
		case !ok:
			err = c.raft.AddNonvoter(serverID(id), addr, 0, 5*time.Second).Error()
		case s.Address == addr:
			continue
		case s.Suffrage == raft.Voter:
			c.log.Info("controller: a voter is back on another address", "id", id, "addr", addr)
			err = c.raft.AddVoter(serverID(id), addr, 0, 5*time.Second).Error()
		default:
			c.log.Info("controller: an observer is back on another address", "id", id, "addr", addr)
			err = c.raft.AddNonvoter(serverID(id), addr, 0, 5*time.Second).Error()
		}
		if err != nil {
			c.log.Warn("controller: adding a broker to the metadata quorum", "id", id, "err", err)
		}
	}
}
