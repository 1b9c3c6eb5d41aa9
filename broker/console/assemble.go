package console

import (
	"slices"
	"sort"
	"strings"
	"time"

	"klab.dev/klab/broker/membership"
	"klab.dev/klab/broker/metadata"
)

// Assemble puts the cluster's view together: the metadata image (leaders,
// replicas, ISRs), who gossip says is alive, the active controller, and
// the Local of each broker whose console answered. unreachable says, for
// the brokers whose console did not, why.
func Assemble(im *metadata.Image, alive map[int32]membership.Member, controller, served int32, locals map[int32]Local, unreachable map[int32]string) Cluster {
	c := Cluster{
		ClusterID:      im.ClusterID,
		Served:         served,
		Controller:     controller,
		MetadataOffset: im.Offset,
		Time:           time.Now(),
	}

	// Every replica's own report, by topic, partition and broker.
	type key struct {
		topic     string
		partition int32
	}
	reports := map[key]map[int32]Replica{}
	for id, l := range locals {
		for _, r := range l.Replicas {
			k := key{r.Topic, r.Partition}
			if reports[k] == nil {
				reports[k] = map[int32]Replica{}
			}
			reports[k][id] = r
		}
	}

	leads := map[int32]int{}
	for _, name := range sortedKeys(im.Topics) {
		t := im.Topics[name]
		tv := Topic{Name: name, Internal: strings.HasPrefix(name, "__")}
		for i, p := range t.Partitions {
			pv := Partition{
				Index: int32(i), Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: slices.Clone(p.Replicas), ISR: slices.Clone(p.ISR),
				HighWatermark: -1,
				// Replicas a reassignment is adding are not expected
				// in the ISR yet, as Kafka counts them.
				UnderReplicated: len(p.ISR) < len(p.Replicas)-len(p.AddingReplicas),
				Offline:         p.Leader < 0,
				Reassigning:     p.Reassigning(),
			}
			if p.Leader >= 0 {
				leads[p.Leader]++
			}
			rep := reports[key{name, int32(i)}]
			leader, leaderAnswered := rep[p.Leader]
			leaderAnswered = leaderAnswered && leader.Leader
			if leaderAnswered {
				pv.HighWatermark = leader.HighWatermark
			}
			for _, id := range p.Replicas {
				_, isAlive := alive[id]
				rv := ReplicaView{Broker: id, InISR: p.InSync(id), Alive: isAlive, LogEnd: -1}
				if own, ok := rep[id]; ok {
					rv.LogEnd = own.LogEnd
				} else if leo, ok := leader.Followers[id]; leaderAnswered && ok && leo >= 0 {
					rv.LogEnd, rv.FromLeader = leo, true
				}
				pv.States = append(pv.States, rv)
			}
			tv.Partitions = append(tv.Partitions, pv)
		}
		c.Topics = append(c.Topics, tv)
	}

	// Brokers: the registered ones, and any alive but not registered yet.
	ids := map[int32]bool{}
	for id := range im.Brokers {
		ids[id] = true
	}
	for id := range alive {
		ids[id] = true
	}
	for _, id := range sortedKeys(ids) {
		reg, registered := im.Brokers[id]
		m, isAlive := alive[id]
		b := Broker{
			ID: id, Addr: reg.Addr, Rack: reg.Rack, Registered: registered,
			Alive: isAlive, Incarnation: reg.Incarnation,
			ShuttingDown: reg.InControlledShutdown, Controller: id == controller,
			Console: m.Console, Unreachable: unreachable[id], Leads: leads[id],
		}
		if !registered {
			b.Addr, b.Rack, b.Incarnation = m.Addr, m.Rack, m.Incarnation
		}
		c.Brokers = append(c.Brokers, b)
	}

	c.Groups = groupViews(locals, func(topic string, partition int32) int64 {
		for _, t := range c.Topics {
			if t.Name == topic && int(partition) < len(t.Partitions) {
				return t.Partitions[partition].HighWatermark
			}
		}
		return -1
	})
	return c
}

// groupViews lists every group the coordinators reported, with a lag row
// per partition that has a commit or an owner, as kafka-consumer-groups.sh
// --describe lists them. end gives a partition's high watermark, -1 if
// unknown: the LOG-END-OFFSET column, which is what a consumer can read
// up to.
func groupViews(locals map[int32]Local, end func(topic string, partition int32) int64) []GroupView {
	var out []GroupView
	for _, coordinator := range sortedKeys(locals) {
		for _, g := range locals[coordinator].Groups {
			gv := GroupView{ID: g.ID, State: g.State, Coordinator: coordinator, ProtocolType: g.ProtocolType, Protocol: g.Protocol, Members: g.Members}
			type tp struct {
				topic     string
				partition int32
			}
			rows := map[tp]*LagRow{}
			row := func(topic string, partition int32) *LagRow {
				k := tp{topic, partition}
				if rows[k] == nil {
					rows[k] = &LagRow{Topic: topic, Partition: partition, Committed: -1, LogEnd: end(topic, partition), Lag: -1}
				}
				return rows[k]
			}
			for _, c := range g.Committed {
				row(c.Topic, c.Partition).Committed = c.Offset
			}
			for _, m := range g.Members {
				for topic, parts := range m.Assigned {
					for _, p := range parts {
						r := row(topic, p)
						r.MemberID, r.Host, r.ClientID = m.ID, m.ClientHost, m.ClientID
					}
				}
			}
			for _, r := range rows {
				if r.Committed >= 0 && r.LogEnd >= 0 {
					r.Lag = max(r.LogEnd-r.Committed, 0)
					gv.TotalLag += r.Lag
				}
				gv.Lag = append(gv.Lag, *r)
			}
			sort.Slice(gv.Lag, func(i, j int) bool {
				a, b := gv.Lag[i], gv.Lag[j]
				if a.Topic != b.Topic {
					return a.Topic < b.Topic
				}
				return a.Partition < b.Partition
			})
			out = append(out, gv)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// sortedKeys returns a map's keys in order.
func sortedKeys[K int32 | string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
