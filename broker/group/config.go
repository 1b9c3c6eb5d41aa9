package group

import "time"

// Config holds the coordinator's group settings, named after Kafka's broker
// configs.
type Config struct {
	// MinSessionTimeout is group.min.session.timeout.ms: a JoinGroup asking
	// for a shorter session gets INVALID_SESSION_TIMEOUT. A floor keeps
	// members from heartbeating so often that they load the coordinator.
	MinSessionTimeout time.Duration
	// MaxSessionTimeout is group.max.session.timeout.ms: a ceiling on how long
	// a dead member can go unnoticed while it holds its partitions.
	MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: how long the
	// first rebalance of an empty group waits for more members, so that
	// consumers started together land in one generation instead of one
	// rebalance each.
	InitialRebalanceDelay time.Duration
	// MaxSize is group.max.size (KIP-389): a JoinGroup that would make the
	// group bigger gets GROUP_MAX_SIZE_REACHED. 0 means no limit, Kafka's
	// default.
	MaxSize int
	// Now is the clock. Tests pass a fake one they advance by hand; nil
	// means time.Now.
	Now func() time.Time
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		MinSessionTimeout:     6 * time.Second,
		MaxSessionTimeout:     30 * time.Minute,
		InitialRebalanceDelay: 3 * time.Second,
		Now:                   time.Now,
	}
}
