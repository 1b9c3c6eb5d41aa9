package streams

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"

	"klab.dev/klab/admin"
	"klab.dev/klab/consumer"
	"klab.dev/klab/consumer/assign"
	"klab.dev/klab/producer"
)

// State is the state of a streams application, as Kafka's
// KafkaStreams.State.
type State int

// The states, in the order an application usually goes through them.
const (
	// Created: made by New, not started.
	Created State = iota
	// Rebalancing: started, and some thread is between a rebalance's
	// start and its tasks being ready (restored).
	Rebalancing
	// Running: every thread has its tasks, restored, and processes.
	Running
	// PendingShutdown: Close was called, threads are stopping.
	PendingShutdown
	// NotRunning: closed cleanly.
	NotRunning
	// Error: a thread stopped on an error; Err says which. The other
	// threads stop too.
	Error
)

// String is the state as Kafka spells it.
func (s State) String() string {
	switch s {
	case Created:
		return "CREATED"
	case Rebalancing:
		return "REBALANCING"
	case Running:
		return "RUNNING"
	case PendingShutdown:
		return "PENDING_SHUTDOWN"
	case NotRunning:
		return "NOT_RUNNING"
	case Error:
		return "ERROR"
	}
	return "UNKNOWN"
}

// KafkaStreams runs a topology on a cluster, as Kafka's KafkaStreams: it
// creates the internal topics, then runs num.stream.threads threads, each
// a member of the application's consumer group (group.id =
// application.id), among all the threads of all the application's
// instances. The group's assignor deals out the topology's tasks; each
// thread restores its tasks' stores from their changelogs and processes
// their records, committing at-least-once.
type KafkaStreams struct {
	topo *Topology
	cfg  Config
	// changelogs are the changelog topics of the logged stores, to know
	// the producer's answers that checkpoints need.
	changelogs map[string]struct{}
	assignor   *streamsAssignor

	mu          sync.Mutex
	state       State
	err         error
	threads     []*streamThread
	views       []ThreadMetadata // what each thread last published
	rebalancing []bool           // by thread
	cancel      context.CancelFunc
	done        sync.WaitGroup
	closed      bool // Close returned: no thread runs
	// cancelStart ends a Start in progress; started is closed when Start
	// has returned, so that Close can wait for it (nil before Start).
	cancelStart context.CancelFunc
	started     chan struct{}
}

// New checks the topology and the configuration and returns an
// application in state Created: Start runs it.
func New(topo *Topology, cfg Config) (*KafkaStreams, error) {
	if err := topo.Err(); err != nil {
		return nil, err
	}
	if len(topo.SourceTopics(cfg.ApplicationID)) == 0 {
		return nil, errorf("the topology reads no topic")
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	s := &KafkaStreams{topo: topo, cfg: cfg, changelogs: map[string]struct{}{}}
	for _, spec := range topo.stores {
		if !spec.LoggingDisabled {
			s.changelogs[ChangelogTopic(cfg.ApplicationID, spec.Name)] = struct{}{}
		}
	}
	s.assignor = &streamsAssignor{topo: topo, appID: cfg.ApplicationID, fail: s.fail}
	// Check the client overrides now, not when a thread starts.
	if _, err := s.consumerConfig("check"); err != nil {
		return nil, err
	}
	if _, err := s.producerConfig("check"); err != nil {
		return nil, err
	}
	return s, nil
}

// consumerConfig is the configuration of a thread's consumer, as Kafka
// Streams sets it: the group is the application, offsets are committed by
// the thread (never automatically), a partition without a committed
// offset is read from its start, a poll returns up to 1000 records, and
// the streams assignor deals tasks.
func (s *KafkaStreams) consumerConfig(clientID string) (consumer.Config, error) {
	cc := consumer.DefaultConfig()
	cc.BootstrapServers = s.cfg.BootstrapServers
	cc.ClientID = clientID
	cc.AutoOffsetReset = "earliest"
	cc.MaxPollRecords = 1000
	for name, value := range s.cfg.Consumer {
		if err := cc.Set(name, value); err != nil {
			return cc, errorf("consumer.%s: %w", name, err)
		}
	}
	cc.GroupID = s.cfg.ApplicationID
	cc.EnableAutoCommit = false
	cc.PartitionAssignmentStrategy = []string{s.assignor.Name()}
	cc.Assignors = []assign.Assignor{s.assignor}
	return cc, nil
}

// producerConfig is the configuration of a thread's producer: Kafka
// Streams lingers 100 ms, as commits flush anyway.
func (s *KafkaStreams) producerConfig(clientID string) (producer.Config, error) {
	pc := producer.DefaultConfig()
	pc.BootstrapServers = s.cfg.BootstrapServers
	pc.ClientID = clientID
	pc.Linger = 100 * time.Millisecond
	for name, value := range s.cfg.Producer {
		if err := pc.Set(name, value); err != nil {
			return pc, errorf("producer.%s: %w", name, err)
		}
	}
	return pc, nil
}

// Start prepares the cluster for the application and starts its threads:
// it checks that the source topics exist (a MissingSourceTopicError
// within seconds if not) and that joined inputs are co-partitioned,
// creates the missing internal topics and waits until they have leaders.
// ctx bounds this preparation; the threads then run until Close. An error
// leaves the application in state Error. A Close during Start cancels it:
// Start returns an error, and no thread runs.
func (s *KafkaStreams) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.state != Created {
		defer s.mu.Unlock()
		return errorf("Start in state %s: an application starts once", s.state)
	}
	s.state = Rebalancing
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	s.cancelStart, s.started = cancel, started
	s.mu.Unlock()
	defer close(started) // last: Close waits for it
	defer cancel()
	if err := s.start(ctx); err != nil {
		s.mu.Lock()
		closing := s.state == PendingShutdown
		s.mu.Unlock()
		if closing {
			return errorf("closed while starting: %w", err)
		}
		s.fail(err)
		return err
	}
	return nil
}

func (s *KafkaStreams) start(ctx context.Context) error {
	if err := os.MkdirAll(s.appDir(), 0o755); err != nil {
		return errorf("state.dir: %w", err)
	}
	adm := admin.New(admin.Options{Bootstrap: s.cfg.BootstrapServers, ClientID: s.cfg.ClientID + "-admin"})
	defer adm.Close()
	counts, err := prepareTopics(ctx, adm, s.topo, s.cfg)
	if err != nil {
		return err
	}
	if _, err := s.topo.Tasks(s.cfg.ApplicationID, counts); err != nil {
		return err
	}
	threads := make([]*streamThread, s.cfg.NumStreamThreads)
	closeThreads := func(threads []*streamThread) {
		for _, th := range threads {
			th.consumer.Close()
			th.producer.Close()
		}
	}
	for i := range threads {
		if threads[i], err = newStreamThread(s, i+1); err != nil {
			closeThreads(threads[:i])
			return err
		}
	}
	// The threads are launched with s.mu held, after a last look at the
	// state: a Close that came meanwhile is not undone, and Close's Wait
	// cannot come before the WaitGroup's Adds (it waits for Start first).
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != Rebalancing {
		closeThreads(threads)
		if s.err != nil {
			return s.err
		}
		return errorf("the application stopped while it started (state %s)", s.state)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.threads, s.cancel = threads, cancel
	s.views = make([]ThreadMetadata, len(threads))
	s.rebalancing = make([]bool, len(threads))
	for i, th := range threads {
		s.views[i] = ThreadMetadata{Name: th.name}
		s.rebalancing[i] = true
	}
	s.cfg.Logger("streams %s: starting %d stream threads as %s", s.cfg.ApplicationID, len(threads), s.cfg.ClientID)
	for _, th := range threads {
		s.done.Add(1)
		go func() {
			defer s.done.Done()
			th.run(runCtx) // an error is reported by the thread itself, at once (app.fail)
		}()
	}
	return nil
}

// appDir is <state.dir>/<application.id>.
func (s *KafkaStreams) appDir() string {
	return filepath.Join(s.cfg.StateDir, s.cfg.ApplicationID)
}

// fail puts the application in state Error with err (the first error is
// kept) and stops every thread.
func (s *KafkaStreams) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
		s.cfg.Logger("streams %s: stopping on an error: %v", s.cfg.ApplicationID, err)
	}
	s.setState(Error)
	if s.cancel != nil {
		s.cancel()
	}
}

// setState moves to state next, logging the transition, as Kafka logs
// "State transition from REBALANCING to RUNNING". Error is final; so is
// NotRunning. Call with s.mu held.
func (s *KafkaStreams) setState(next State) {
	if s.state == next || s.state == Error || s.state == NotRunning {
		return
	}
	s.cfg.Logger("streams %s: state transition from %s to %s", s.cfg.ApplicationID, s.state, next)
	s.state = next
	s.writeStatus()
}

// threadChanged takes what thread index (from 1) now runs, and whether it
// is rebalancing, and updates the state and the status file.
func (s *KafkaStreams) threadChanged(index int, view ThreadMetadata, rebalancing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index-1 >= len(s.views) {
		return
	}
	s.views[index-1], s.rebalancing[index-1] = view, rebalancing
	if s.state == Rebalancing || s.state == Running {
		next := Running
		for _, r := range s.rebalancing {
			if r {
				next = Rebalancing
			}
		}
		s.setState(next)
	}
	s.writeStatus()
}

// writeStatus replaces the status file. A failure is logged, not fatal:
// the file only informs. Call with s.mu held.
func (s *KafkaStreams) writeStatus() {
	st := Status{
		ApplicationID: s.cfg.ApplicationID,
		ClientID:      s.cfg.ClientID,
		PID:           os.Getpid(),
		State:         s.state.String(),
		Updated:       time.Now().UTC(),
		Threads:       s.threadsLocked(),
	}
	if s.err != nil {
		st.Error = s.err.Error()
	}
	if err := writeStatus(s.appDir(), st); err != nil && !os.IsNotExist(err) {
		s.cfg.Logger("streams %s: writing the status file: %v", s.cfg.ApplicationID, err)
	}
}

// State is the application's state.
func (s *KafkaStreams) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Err is the error that put the application in state Error, nil if none.
func (s *KafkaStreams) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Threads describes this instance's threads and their tasks, as Kafka's
// metadataForLocalThreads.
func (s *KafkaStreams) Threads() []ThreadMetadata {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.threadsLocked()
}

func (s *KafkaStreams) threadsLocked() []ThreadMetadata {
	out := make([]ThreadMetadata, len(s.views))
	for i, v := range s.views {
		out[i] = v
		out[i].Tasks = append([]TaskMetadata(nil), v.Tasks...)
	}
	return out
}

// Close stops the application: each thread commits, flushes, writes its
// tasks' checkpoints and closes them, and leaves the group, so that the
// other instances take its tasks at once. It returns the error that put
// the application in state Error, if one did.
func (s *KafkaStreams) Close() error {
	s.mu.Lock()
	if s.state == NotRunning {
		s.mu.Unlock()
		return nil
	}
	s.setState(PendingShutdown)
	cancelStart, started := s.cancelStart, s.started
	s.mu.Unlock()
	if started != nil {
		// A Start in progress stops, and launches no thread.
		cancelStart()
		<-started
	}
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.done.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.setState(NotRunning)
	s.writeStatus()
	return s.err
}

// CleanUp deletes this application's local state, the directory
// <state.dir>/<application.id> (stores, checkpoints, status file), as
// Kafka's cleanUp: the next start restores every store from its
// changelog. Only before Start or after Close.
func (s *KafkaStreams) CleanUp() error {
	s.mu.Lock()
	idle := s.state == Created || s.closed
	s.mu.Unlock()
	if !idle {
		return errorf("CleanUp while the application runs: Close it first")
	}
	return os.RemoveAll(s.appDir())
}
