// Package console is the cluster's live web console: every broker serves a
// page that shows the brokers, each partition's leader, replicas, in-sync
// replicas, each replica's log end offset and the high watermark, and the
// consumer groups with their lag, updated as the cluster changes (a broker
// killed in another terminal shows within a second or two).
//
// No broker knows all of that alone. The metadata log says who leads and
// who is in sync; only each broker knows its own replicas' log ends, and
// only a group's coordinator knows its members and committed offsets. So
// each broker's console answers /api/local with what it knows of itself
// (Local), and the console a browser talks to asks every live broker's and
// puts the answers together with the metadata (Assemble). The page gets
// the result as server-sent events and draws it; every asset is embedded
// in the binary, so the console works with no network beyond loopback.
package console

import "time"

// Local is what one broker alone knows: its replicas and the groups it
// coordinates. Its console serves it at /api/local.
type Local struct {
	Broker   int32     `json:"broker"`
	Replicas []Replica `json:"replicas"`
	Groups   []Group   `json:"groups"`
}

// Replica is a broker's replica of a partition as that broker sees it.
type Replica struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	Leader      bool   `json:"leader"`
	LeaderEpoch int32  `json:"leaderEpoch"`
	LogStart    int64  `json:"logStart"`
	LogEnd      int64  `json:"logEnd"`
	// HighWatermark is the leader's own on the leader; on a follower, the
	// one its leader last told it, which may lag a fetch behind.
	HighWatermark int64 `json:"highWatermark"`
	// Followers is, on the leader, each follower's log end offset as its
	// last fetch said; -1 before its first fetch.
	Followers map[int32]int64 `json:"followers,omitempty"`
}

// Group is a consumer group as its coordinator knows it.
type Group struct {
	ID           string      `json:"id"`
	State        string      `json:"state"`
	ProtocolType string      `json:"protocolType"`
	Protocol     string      `json:"protocol"`
	Members      []Member    `json:"members"`
	Committed    []Committed `json:"committed"`
}

// Member is a member of a group and, for consumers, its partitions.
type Member struct {
	ID         string             `json:"id"`
	ClientID   string             `json:"clientId"`
	ClientHost string             `json:"clientHost"`
	Assigned   map[string][]int32 `json:"assigned,omitempty"`
}

// Committed is a group's committed offset for one partition.
type Committed struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Cluster is what the page shows: the whole cluster, put together by one
// broker from the metadata and every live broker's Local.
type Cluster struct {
	ClusterID string `json:"clusterId"`
	// Served is the broker that put this view together.
	Served int32 `json:"served"`
	// Controller is the active controller's id, -1 while there is none.
	Controller int32 `json:"controller"`
	// MetadataOffset is how far into the metadata log this view is.
	MetadataOffset uint64      `json:"metadataOffset"`
	Time           time.Time   `json:"time"`
	Brokers        []Broker    `json:"brokers"`
	Topics         []Topic     `json:"topics"`
	Groups         []GroupView `json:"groups"`
	// Processes is, on the console of `klab cluster`, the state of each
	// broker process it started ("running", "paused", "stopped"); with it
	// the page offers the classroom controls. Empty on a broker's console.
	Processes map[int32]string `json:"processes,omitempty"`
}

// Broker is one broker as the cluster sees it.
type Broker struct {
	ID   int32  `json:"id"`
	Addr string `json:"addr"`
	Rack string `json:"rack,omitempty"`
	// Alive: gossip has it alive (a registered broker may be dead: the
	// metadata keeps it, with its replicas, until it comes back).
	Alive bool `json:"alive"`
	// Registered: the metadata log has this broker.
	Registered bool `json:"registered"`
	// Incarnation tells this run of the broker from its earlier ones (the
	// role KRaft's broker epoch plays): it changes at every restart. In
	// JSON a string: a JavaScript number cannot hold every int64.
	Incarnation int64 `json:"incarnation,string"`
	// ShuttingDown: in a controlled shutdown; no partition is given to it.
	ShuttingDown bool `json:"shuttingDown,omitempty"`
	Controller   bool `json:"controller,omitempty"`
	// Console is its console's address, host:port, if it serves one.
	Console string `json:"console,omitempty"`
	// Unreachable says why its console did not answer, if it did not.
	Unreachable string `json:"unreachable,omitempty"`
	// Leads counts the partitions it leads.
	Leads int `json:"leads"`
}

// Topic is a topic and its partitions.
type Topic struct {
	Name       string      `json:"name"`
	Internal   bool        `json:"internal,omitempty"`
	Partitions []Partition `json:"partitions"`
}

// Partition is one partition: the metadata's view and the replicas'.
type Partition struct {
	Index       int32   `json:"index"`
	Leader      int32   `json:"leader"` // -1: offline
	LeaderEpoch int32   `json:"leaderEpoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	// HighWatermark is the leader's, or -1 when the leader did not answer.
	HighWatermark int64         `json:"highWatermark"`
	States        []ReplicaView `json:"states"`
	// UnderReplicated: fewer in-sync replicas than replicas, not counting
	// those a reassignment is adding (Kafka's UnderReplicatedPartitions
	// counts these).
	UnderReplicated bool `json:"underReplicated,omitempty"`
	// Offline: no leader (Kafka's OfflinePartitionsCount).
	Offline     bool `json:"offline,omitempty"`
	Reassigning bool `json:"reassigning,omitempty"`
}

// ReplicaView is one replica of a partition.
type ReplicaView struct {
	Broker int32 `json:"broker"`
	InISR  bool  `json:"inIsr"`
	Alive  bool  `json:"alive"`
	// LogEnd is the replica's log end offset as the replica reported it,
	// or, if it did not answer, as the leader last saw it; -1 if unknown.
	LogEnd int64 `json:"logEnd"`
	// FromLeader says LogEnd is the leader's view, not the replica's own.
	FromLeader bool `json:"fromLeader,omitempty"`
}

// GroupView is a group with its coordinator and its lag, the rows of
// kafka-consumer-groups.sh --describe.
type GroupView struct {
	ID           string   `json:"id"`
	State        string   `json:"state"`
	Coordinator  int32    `json:"coordinator"`
	ProtocolType string   `json:"protocolType"`
	Protocol     string   `json:"protocol"`
	Members      []Member `json:"members"`
	Lag          []LagRow `json:"lag"`
	// TotalLag sums the known lags.
	TotalLag int64 `json:"totalLag"`
}

// LagRow is one partition of a group: committed offset, log end, lag and
// the member that owns it. LogEnd is named after kafka-consumer-groups'
// LOG-END-OFFSET column, which shows, as here, the high watermark: the end
// of what a consumer can read, not the leader's log end offset. Offsets are -1 where unknown (no commit yet, or
// the leader did not answer).
type LagRow struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"`
	LogEnd    int64  `json:"logEnd"`
	Lag       int64  `json:"lag"`
	MemberID  string `json:"memberId,omitempty"`
	Host      string `json:"host,omitempty"`
	ClientID  string `json:"clientId,omitempty"`
}
