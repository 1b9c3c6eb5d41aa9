package broker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/log"
)

// Broker is one Kafka broker: its topics, their partitions' logs, and the
// server that speaks the wire protocol to clients.
type Broker struct {
	cfg       Config
	log       *slog.Logger
	clusterID string
	ln        net.Listener
	addr      string // host:port clients are told to use
	cleaner   *log.Cleaner

	mu     sync.RWMutex
	topics map[string]*topic

	// appended is closed and replaced each time a batch is appended to any
	// partition: a long-polling Fetch waits on it for new data.
	appendMu sync.Mutex
	appended chan struct{}

	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	closeErr  error
	conns     sync.WaitGroup
	connMu    sync.Mutex
	open      map[net.Conn]struct{}
}

// topic is a topic and its partitions.
type topic struct {
	name       string
	id         [16]byte
	configs    map[string]string // set on the topic; the rest come from the broker
	partitions []*partition
}

// partition is one partition of a topic, on this broker.
type partition struct {
	topic *topic
	index int32
	log   *log.Log
}

// Start opens the broker's data directory, listens on cfg.Listen and
// serves clients until Close.
func Start(cfg Config) (*Broker, error) {
	b := &Broker{cfg: cfg, log: cfg.Logger, topics: map[string]*topic{}, appended: make(chan struct{}), open: map[net.Conn]struct{}{}}
	if b.log == nil {
		b.log = slog.Default()
	}
	if b.cfg.TopicDefaults == nil {
		b.cfg.TopicDefaults = map[string]string{}
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if b.cfg.RetentionCheckInterval <= 0 {
		b.cfg.RetentionCheckInterval = DefaultConfig().RetentionCheckInterval
	}
	b.cleaner = log.NewCleaner(b.cfg.RetentionCheckInterval)
	if err := b.load(); err != nil {
		b.closeLogs()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		b.closeLogs()
		return nil, err
	}
	b.ln = ln
	b.addr = cfg.Advertised
	if b.addr == "" {
		b.addr = ln.Addr().String()
	}
	b.cleaner.Start()
	b.conns.Add(1)
	go b.accept()
	return b, nil
}

// Addr is the address clients reach the broker at, host:port.
func (b *Broker) Addr() string { return b.addr }

// ClusterID is the cluster's id, kept in meta.properties.
func (b *Broker) ClusterID() string { return b.clusterID }

func (b *Broker) accept() {
	defer b.conns.Done()
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.connMu.Lock()
		if b.ctx.Err() != nil { // Close has already closed the open ones
			b.connMu.Unlock()
			nc.Close()
			return
		}
		b.open[nc] = struct{}{}
		b.connMu.Unlock()
		b.conns.Add(1)
		go func() {
			defer b.conns.Done()
			b.serveConn(b.ctx, nc)
			b.connMu.Lock()
			delete(b.open, nc)
			b.connMu.Unlock()
		}()
	}
}

// Close stops the broker: no new connections, open ones closed, long polls
// ended, then every log flushed and closed. Later calls do nothing.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() { b.closeErr = b.close() })
	return b.closeErr
}

func (b *Broker) close() error {
	err := b.ln.Close()
	b.connMu.Lock()
	b.cancel()
	for nc := range b.open {
		nc.Close()
	}
	b.connMu.Unlock()
	b.conns.Wait()
	b.cleaner.Stop()
	return errors.Join(err, b.closeLogs())
}

func (b *Broker) closeLogs() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var err error
	for _, t := range b.topics {
		for _, p := range t.partitions {
			err = errors.Join(err, p.log.Close())
		}
	}
	return err
}

// notifyAppend wakes every Fetch waiting for data.
func (b *Broker) notifyAppend() {
	b.appendMu.Lock()
	close(b.appended)
	b.appended = make(chan struct{})
	b.appendMu.Unlock()
}

// appendedChan returns the channel the next append closes.
func (b *Broker) appendedChan() <-chan struct{} {
	b.appendMu.Lock()
	defer b.appendMu.Unlock()
	return b.appended
}

// topicState is a topic as it is written to topics.json.
type topicState struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

const (
	metaFile   = "meta.properties"
	topicsFile = "topics.json"
)

// load reads the cluster id and the topics from the data directory, or
// starts a new cluster there, and opens every partition's log.
func (b *Broker) load() error {
	dir := b.cfg.DataDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	meta, err := os.ReadFile(filepath.Join(dir, metaFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		b.clusterID = newClusterID()
		props := fmt.Sprintf("# klab broker data\nversion=1\ncluster.id=%s\nnode.id=%d\n", b.clusterID, b.cfg.NodeID)
		if err := writeFileAtomic(filepath.Join(dir, metaFile), []byte(props)); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		m := regexp.MustCompile(`(?m)^cluster\.id=(\S+)`).FindSubmatch(meta)
		if m == nil {
			return fmt.Errorf("%s has no cluster.id", filepath.Join(dir, metaFile))
		}
		b.clusterID = string(m[1])
	}
	data, err := os.ReadFile(filepath.Join(dir, topicsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var states []topicState
	if err := json.Unmarshal(data, &states); err != nil {
		return fmt.Errorf("%s: %w", topicsFile, err)
	}
	for _, st := range states {
		t := &topic{name: st.Name, configs: st.Configs}
		if t.configs == nil {
			t.configs = map[string]string{}
		}
		id, err := hex.DecodeString(st.ID)
		if err != nil || len(id) != len(t.id) {
			return fmt.Errorf("%s: topic %s: bad id %q", topicsFile, st.Name, st.ID)
		}
		copy(t.id[:], id)
		b.topics[t.name] = t
		if err := b.addPartitions(t, st.Partitions); err != nil {
			return err
		}
	}
	return nil
}

// saveTopics writes every topic's name, id, partition count and configs.
// The caller holds b.mu.
func (b *Broker) saveTopics() error {
	states := make([]topicState, 0, len(b.topics))
	for _, t := range b.topics {
		states = append(states, topicState{Name: t.name, ID: hex.EncodeToString(t.id[:]), Partitions: int32(len(t.partitions)), Configs: t.configs})
	}
	sort.Slice(states, func(i, j int) bool { return states[i].Name < states[j].Name })
	data, err := json.MarshalIndent(states, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(b.cfg.DataDir, topicsFile), data)
}

// addPartitions opens logs for partitions len(t.partitions) to n-1.
func (b *Broker) addPartitions(t *topic, n int32) error {
	for i := int32(len(t.partitions)); i < n; i++ {
		l, err := log.Open(b.partitionDir(t.name, i), b.cfg.logConfig(t.configs))
		if err != nil {
			return err
		}
		b.cleaner.Add(l)
		t.partitions = append(t.partitions, &partition{topic: t, index: i, log: l})
	}
	return nil
}

// partitionDir is where a partition's log lives: <log.dirs>/<topic>-<partition>, as in Kafka.
func (b *Broker) partitionDir(topic string, index int32) string {
	return filepath.Join(b.cfg.DataDir, topic+"-"+strconv.Itoa(int(index)))
}

// maxPartitions caps a topic's partitions. Kafka sets no hard limit, but
// every partition is three open files here, and a request should not be
// able to make the broker open a million of them.
const maxPartitions = 10000

// topicNameRe is what Kafka allows in a topic name.
var topicNameRe = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// validTopicName returns INVALID_TOPIC_EXCEPTION for a name Kafka would refuse.
func validTopicName(name string) error {
	if !topicNameRe.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("%w: %q: a topic name is 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-', and not . or ..", kerr.InvalidTopicException, name)
	}
	return nil
}

// createTopic creates a topic with n partitions. It fails with
// TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS,
// INVALID_REPLICATION_FACTOR or INVALID_CONFIG; validateOnly checks
// without creating.
func (b *Broker) createTopic(name string, n int32, rf int16, configs map[string]string, validateOnly bool) (*topic, error) {
	if err := validTopicName(name); err != nil {
		return nil, err
	}
	if n == -1 {
		n = b.cfg.NumPartitions
	}
	if rf == -1 {
		rf = b.cfg.DefaultReplicationFactor
	}
	if n <= 0 || n > maxPartitions {
		return nil, fmt.Errorf("%w: %d partitions; a topic has 1 to %d", kerr.InvalidPartitions, n, maxPartitions)
	}
	if rf != 1 {
		return nil, fmt.Errorf("%w: replication factor %d, but this cluster has 1 broker (replication arrives in lesson 06)", kerr.InvalidReplicationFactor, rf)
	}
	for k, v := range configs {
		if err := validateTopicConfig(k, v); err != nil {
			return nil, fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.topics[name]; ok {
		return nil, fmt.Errorf("%w: topic %q already exists", kerr.TopicAlreadyExists, name)
	}
	t := &topic{name: name, configs: map[string]string{}}
	for k, v := range configs {
		t.configs[k] = v
	}
	if validateOnly {
		return t, nil
	}
	if _, err := rand.Read(t.id[:]); err != nil {
		return nil, err
	}
	if err := b.addPartitions(t, n); err != nil {
		b.dropPartitions(t, 0)
		return nil, err
	}
	b.topics[name] = t
	if err := b.saveTopics(); err != nil {
		// Not on disk, so not created: a restart would not know it.
		delete(b.topics, name)
		b.dropPartitions(t, 0)
		return nil, err
	}
	return t, nil
}

// dropPartitions closes and forgets a topic's partitions from index from
// on, undoing an addPartitions whose result could not be kept.
func (b *Broker) dropPartitions(t *topic, from int32) {
	for _, p := range t.partitions[from:] {
		b.cleaner.Remove(p.log)
		p.log.Close()
	}
	t.partitions = t.partitions[:from]
}

// deleteTopic removes a topic and its data.
func (b *Broker) deleteTopic(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.topics[name]
	if !ok {
		return fmt.Errorf("%w: no topic %q", kerr.UnknownTopicOrPartition, name)
	}
	delete(b.topics, name)
	if err := b.saveTopics(); err != nil {
		return err
	}
	var err error
	for _, p := range t.partitions {
		b.cleaner.Remove(p.log)
		err = errors.Join(err, p.log.Close(), os.RemoveAll(p.log.Dir()))
	}
	return err
}

// topicByName returns a topic, or nil.
func (b *Broker) topicByName(name string) *topic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.topics[name]
}

// partitionOf returns a partition, or UNKNOWN_TOPIC_OR_PARTITION.
func (b *Broker) partitionOf(topicName string, index int32) (*partition, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t := b.topics[topicName]
	if t == nil || index < 0 || int(index) >= len(t.partitions) {
		return nil, fmt.Errorf("%w: %s-%d", kerr.UnknownTopicOrPartition, topicName, index)
	}
	return t.partitions[index], nil
}

// sortedTopics returns the topics by name.
func (b *Broker) sortedTopics() []*topic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]*topic, 0, len(b.topics))
	for _, t := range b.topics {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// newClusterID makes a cluster id as Kafka's are: 16 random bytes, base64url.
func newClusterID() string {
	var id [16]byte
	rand.Read(id[:])
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// writeFileAtomic writes a file so that a crash leaves the old or the new
// content, never a mix: a temporary file, synced, renamed over.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// code is errorCode for a response, and logs an error that carries no
// Kafka code: the client sees only UNKNOWN_SERVER_ERROR, the log says why.
func (b *Broker) code(err error) int16 {
	c := errorCode(err)
	if c == kerr.UnknownServerError.Code {
		b.log.Error("request failed", "err", err)
	}
	return c
}

// errorCode is the Kafka error code an error carries, 0 for nil, or
// UNKNOWN_SERVER_ERROR for an error that carries none.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// errorMessage is an error's text for a response's error message field.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
