// Package admin is the course's admin client: it creates, deletes and
// describes topics, describes and alters configs, deletes records, elects
// leaders and moves replicas, speaking Kafka's wire protocol through the
// course's own client (klab.dev/klab/broker/client), as Kafka's
// AdminClient does and as kafka-topics.sh, kafka-configs.sh and the other
// scripts use it.
//
// # What an admin client does
//
// A producer and a consumer talk to partition leaders. An admin client
// mostly talks to the cluster as a whole: it asks for a change of the
// cluster's metadata (a topic, a config, an assignment), and the broker
// that decides such changes is the active controller, which writes them to
// the metadata log that every broker applies. A few admin requests are
// about one broker's own disks or one partition's log, and go to that
// broker.
//
// # Which request goes where
//
//   - Metadata and DescribeCluster: any broker; every broker has the
//     metadata.
//   - CreateTopics, DeleteTopics, CreatePartitions, IncrementalAlterConfigs
//     (of topics and of the brokers' cluster-wide default), ElectLeaders,
//     AlterPartitionReassignments and ListPartitionReassignments: the
//     controller. In a KRaft cluster a client may send them to ANY broker,
//     which forwards them to the active controller and passes the answer
//     back (KIP-590); a broker that cannot forward answers NOT_CONTROLLER.
//     This client sends them to the broker Metadata names as the
//     controller, as Java's AdminClient does (Options.Via sends them
//     elsewhere, to watch forwarding), and on NOT_CONTROLLER asks Metadata
//     again and retries.
//   - DescribeConfigs: any broker for a topic; broker N for broker N's
//     configs, which only it knows.
//   - DescribeLogDirs: every broker, one request each: each describes
//     only its own disks.
//   - DeleteRecords: each partition's leader, which moves the partition's
//     log start offset; its followers follow.
//
// # Errors and retries
//
// Every Kafka error code comes back as an error that wraps franz-go's kerr
// value, so errors.Is(err, kerr.TopicAlreadyExists) works; a method that
// acts on many topics or partitions returns each one's error in its
// results and all of them joined as its error.
//
// Some errors say "not here, not now" rather than "no": NOT_CONTROLLER,
// NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, REQUEST_TIMED_OUT, and a
// connection refused by a broker that is restarting. The client retries
// those, waiting a little longer each time (Options.RetryBackoff, doubled
// up to a second), until the caller's context ends (or Options.Timeout
// when it has no deadline), asking Metadata again before each retry
// because the controller or the leader may have moved. See retriable for
// why each retry is safe.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/client"
)

// Options configure a Client.
type Options struct {
	// Bootstrap is where the client starts: host:port of one or more
	// brokers. Any broker tells it of all the others.
	Bootstrap []string
	// ClientID names the client in the brokers' logs; default "klab-admin".
	ClientID string
	// Via, when set, is the host:port of a broker to send requests for the
	// controller to first, whether or not it is the controller: a broker
	// that can forward (KIP-590) passes them on. If it answers
	// NOT_CONTROLLER, the retries go to the controller itself.
	Via string
	// RetryBackoff is the first wait before a retry; each next wait is
	// twice as long, up to maxRetryBackoff. Default 100 ms, Kafka's
	// retry.backoff.ms.
	RetryBackoff time.Duration
	// Timeout bounds a call, retries included, when the caller's context
	// has no deadline. Default 60 s, Kafka's default.api.timeout.ms.
	Timeout time.Duration
}

// maxRetryBackoff caps the wait between retries: long enough for a new
// controller or leader to be elected (about a second in klab), short
// enough that a caller does not wait long after it was.
const maxRetryBackoff = time.Second

// requestTimeout is what the client tells a broker it may take for a
// request that waits for the cluster (a topic created, records deleted on
// every replica): Kafka's default request.timeout.ms is 30 s.
const requestTimeout = 30 * time.Second

// Client is an admin client for one cluster. Its methods may be called
// from many goroutines.
type Client struct {
	opts    Options
	cluster *client.Cluster // the connections, one per broker

	mu         sync.Mutex
	brokers    map[int32]string // node id -> host:port, from the last Metadata
	controller int32            // the controller the last Metadata named, -1 if none
}

// New returns a client for the cluster at opts.Bootstrap. It connects when
// first used.
func New(opts Options) *Client {
	if opts.ClientID == "" {
		opts.ClientID = "klab-admin"
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = 100 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	return &Client{
		opts:       opts,
		cluster:    client.NewCluster(opts.Bootstrap, opts.ClientID),
		brokers:    map[int32]string{},
		controller: -1,
	}
}

// Close closes the client's connections.
func (c *Client) Close() { c.cluster.Close() }

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// String is the partition as Kafka's tools print it: "orders-0".
func (tp TopicPartition) String() string {
	return tp.Topic + "-" + strconv.Itoa(int(tp.Partition))
}

// kafkaError is the error an error code and the broker's message stand
// for, wrapping kerr's value; nil for code 0. A broker (klab's among them)
// may start its message with the code's own text; it is said once.
func kafkaError(code int16, message *string) error {
	err := kerr.ErrorForCode(code)
	if err == nil {
		return nil
	}
	if message == nil {
		return err
	}
	detail := strings.TrimPrefix(*message, err.Error())
	detail = strings.TrimPrefix(detail, ": ")
	if detail == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, detail)
}

// retriable reports whether an error means "try again", and so why a
// retry is safe:
//
//   - NOT_CONTROLLER: the broker is not the controller and could not
//     forward; it did nothing. Metadata says who the controller is now.
//   - NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE: the broker does not
//     lead the partition (any more, or yet); it did nothing. Metadata says
//     who leads now.
//   - REQUEST_TIMED_OUT: the change may or may not have happened. Admin
//     requests state an outcome ("topic T exists", "x=y", "records before
//     offset 3 are gone"), not a step, so asking again cannot do it twice;
//     at worst the retry finds it done, such as TOPIC_ALREADY_EXISTS after
//     a create that had landed, and says so.
//   - a refused connection: the request never reached a broker (it is
//     restarting, or is gone and Metadata will say so).
func retriable(err error) bool {
	return errors.Is(err, kerr.NotController) ||
		errors.Is(err, kerr.NotLeaderForPartition) || // NOT_LEADER_OR_FOLLOWER
		errors.Is(err, kerr.LeaderNotAvailable) ||
		errors.Is(err, kerr.RequestTimedOut) ||
		errors.Is(err, syscall.ECONNREFUSED)
}

// retry calls attempt until it returns nil or an error that is not
// retriable, or the caller's context (or, without a deadline, the
// client's Timeout) ends. Before each retry it waits, each time twice as
// long up to maxRetryBackoff, and asks Metadata again: whoever was not the
// controller or the leader may know who is now. It returns the last error,
// with the reason it stopped retrying.
func (c *Client) retry(ctx context.Context, attempt func(ctx context.Context) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	backoff := c.opts.RetryBackoff
	for tries := 1; ; tries++ {
		err := attempt(ctx)
		if err == nil || !retriable(err) {
			return err
		}
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("%w (gave up after %d tries: %v)", err, tries, ctx.Err())
		case <-timer.C:
		}
		backoff = min(2*backoff, maxRetryBackoff)
		c.refreshMetadata(ctx) // best effort: the next attempt reports its own error
	}
}

// request sends req on conn. A connection that failed is closed, so that
// the next request to that broker dials it again.
func request[R kmsg.Response](ctx context.Context, conn *client.Conn, req kmsg.Request) (R, error) {
	var zero R
	resp, err := conn.Request(ctx, req)
	if err != nil {
		var ke *kerr.Error
		if !errors.As(err, &ke) { // a network error, not "the broker does not speak it"
			conn.Close()
		}
		return zero, fmt.Errorf("%s to %s: %w", kmsg.NameForKey(req.Key()), conn.Addr(), err)
	}
	return resp.(R), nil
}

// anyConn returns a connection to some broker: one Metadata listed, else a
// bootstrap server.
func (c *Client) anyConn(ctx context.Context) (*client.Conn, error) {
	c.mu.Lock()
	addrs := make([]string, 0, len(c.brokers)+len(c.opts.Bootstrap))
	for _, a := range c.brokers {
		addrs = append(addrs, a)
	}
	c.mu.Unlock()
	addrs = append(addrs, c.opts.Bootstrap...)
	var errs error
	for _, a := range addrs {
		conn, err := c.cluster.Conn(ctx, a)
		if err == nil {
			return conn, nil
		}
		errs = errors.Join(errs, err)
	}
	if errs == nil {
		return nil, errors.New("admin: no bootstrap servers")
	}
	return nil, fmt.Errorf("no broker reachable: %w", errs)
}

// brokerConn returns a connection to broker id, asking Metadata for its
// address if it is not known yet.
func (c *Client) brokerConn(ctx context.Context, id int32) (*client.Conn, error) {
	addr, ok := c.brokerAddr(id)
	if !ok {
		if _, err := c.metadata(ctx, []string{}); err != nil {
			return nil, err
		}
		if addr, ok = c.brokerAddr(id); !ok {
			return nil, fmt.Errorf("%w: broker %d is not in the cluster's metadata", kerr.BrokerNotAvailable, id)
		}
	}
	return c.cluster.Conn(ctx, addr)
}

func (c *Client) brokerAddr(id int32) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	addr, ok := c.brokers[id]
	return addr, ok
}

// controllerConn returns the connection to send a request for the
// controller on: Options.Via on a first attempt, else the broker Metadata
// names as the controller, else any broker (which may forward it).
func (c *Client) controllerConn(ctx context.Context, first bool) (*client.Conn, error) {
	if first && c.opts.Via != "" {
		return c.cluster.Conn(ctx, c.opts.Via)
	}
	c.mu.Lock()
	id := c.controller
	c.mu.Unlock()
	if id < 0 {
		if _, err := c.metadata(ctx, []string{}); err != nil {
			return nil, err
		}
		c.mu.Lock()
		id = c.controller
		c.mu.Unlock()
	}
	if id < 0 {
		return c.anyConn(ctx)
	}
	return c.brokerConn(ctx, id)
}

// toController sends the request build makes to the controller, retrying
// while check (which reads the answer's error codes) says to. build is
// called for each attempt, so that it may leave out what is already done.
func toController[R kmsg.Response](ctx context.Context, c *Client, build func() kmsg.Request, check func(R) error) error {
	first := true
	return c.retry(ctx, func(ctx context.Context) error {
		conn, err := c.controllerConn(ctx, first)
		first = false
		if err != nil {
			return err
		}
		resp, err := request[R](ctx, conn, build())
		if err != nil {
			return err
		}
		return check(resp)
	})
}

// metadata asks any broker for the metadata of topics (nil: every topic;
// empty: none, only the brokers and the controller), and remembers the
// brokers and the controller.
func (c *Client) metadata(ctx context.Context, topics []string) (*kmsg.MetadataResponse, error) {
	conn, err := c.anyConn(ctx)
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrMetadataRequest()
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := request[*kmsg.MetadataResponse](ctx, conn, req)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.controller = resp.ControllerID
	for _, b := range resp.Brokers {
		c.rememberBroker(b.NodeID, b.Host, b.Port)
	}
	return resp, nil
}

// rememberBroker records a broker's address; c.mu must be held. Brokers
// are added and updated, never forgotten: a broker lists the brokers it
// sees alive, and its view may lag or flap for a moment, so a broker
// missing from one answer is kept. One that is really gone refuses the
// connection, and the caller hears so.
func (c *Client) rememberBroker(id int32, host string, port int32) {
	c.brokers[id] = net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// refreshMetadata asks again who the brokers and the controller are.
func (c *Client) refreshMetadata(ctx context.Context) {
	c.mu.Lock()
	c.controller = -1
	c.mu.Unlock()
	c.metadata(ctx, []string{})
}

// timeoutMillis is the time a request may wait at the broker: the
// caller's remaining time, capped at requestTimeout.
func timeoutMillis(ctx context.Context) int32 {
	d := requestTimeout
	if deadline, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(deadline))
	}
	return int32(max(d, time.Millisecond).Milliseconds())
}
