package assign

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSubscriptionRoundTrip(t *testing.T) {
	full := Subscription{
		Topics:     []string{"orders", "payments"},
		UserData:   []byte("ud"),
		Owned:      map[string][]int32{"orders": {0, 2}, "payments": {1}},
		Generation: 7,
		Rack:       "rack-a",
	}
	tests := []struct {
		version int16
		want    Subscription
	}{
		// Each version keeps the fields it has and drops the newer.
		{0, Subscription{Topics: full.Topics, UserData: full.UserData, Generation: -1}},
		{1, Subscription{Topics: full.Topics, UserData: full.UserData, Owned: full.Owned, Generation: -1}},
		{2, Subscription{Topics: full.Topics, UserData: full.UserData, Owned: full.Owned, Generation: 7}},
		{3, full},
	}
	for _, tt := range tests {
		got, err := DecodeSubscription(EncodeSubscription(full, tt.version))
		if err != nil {
			t.Fatalf("v%d: %v", tt.version, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("v%d (-want +got):\n%s", tt.version, diff)
		}
	}
}

// The bytes must be the same whatever order a map hands out, and owned
// partitions sorted: the coordinator compares them.
func TestSubscriptionDeterministic(t *testing.T) {
	s := Subscription{Topics: []string{"a"}, Owned: map[string][]int32{"z": {3, 1}, "a": {2, 0}, "m": {1}}}
	first := EncodeSubscription(s, SubscriptionVersion)
	for range 20 {
		if got := EncodeSubscription(s, SubscriptionVersion); string(got) != string(first) {
			t.Fatal("two encodings of one subscription differ")
		}
	}
	var m kmsg.ConsumerMemberMetadata
	if err := m.ReadFrom(first); err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, op := range m.OwnedPartitions {
		topics = append(topics, op.Topic)
	}
	if diff := cmp.Diff([]string{"a", "m", "z"}, topics); diff != "" {
		t.Errorf("owned topics (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int32{1, 3}, m.OwnedPartitions[2].Partitions); diff != "" {
		t.Errorf("owned partitions (-want +got):\n%s", diff)
	}
}

// What franz-go's group consumer sends in JoinGroup, decoded here.
func TestDecodeFranzGoSubscription(t *testing.T) {
	b := kgo.CooperativeStickyBalancer().JoinGroupMetadata(
		[]string{"t0", "t1"}, map[string][]int32{"t0": {1, 0}, "t1": {2}}, 5)
	got, err := DecodeSubscription(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Subscription{
		Topics:     []string{"t0", "t1"},
		Owned:      map[string][]int32{"t0": {1, 0}, "t1": {2}},
		Generation: 5,
	}
	// UserData is franz-go's StickyMemberMetadata, for the eager sticky
	// assignor; the cooperative one reads the owned partitions instead.
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Subscription{}, "UserData")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if len(got.UserData) == 0 {
		t.Error("franz-go's sticky user data was lost")
	}

	b = kgo.RangeBalancer().JoinGroupMetadata([]string{"t0"}, nil, 3)
	got, err = DecodeSubscription(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Subscription{Topics: []string{"t0"}, Generation: 3}, got); diff != "" {
		t.Errorf("range (-want +got):\n%s", diff)
	}
}

// A member of a newer client may send a version this package does not
// know: read it as the newest known, ignoring what follows, as Java does.
func TestDecodeSubscriptionNewerVersion(t *testing.T) {
	rack := "r"
	m := kmsg.NewConsumerMemberMetadata()
	m.Version = 4
	m.Topics = []string{"t"}
	m.Generation = 9
	m.Rack = &rack
	b := append(m.AppendTo(nil), 0, 1, 2, 3) // a v4 field we know nothing of
	got, err := DecodeSubscription(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Subscription{Topics: []string{"t"}, Generation: 9, Rack: "r"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDecodeSubscriptionBad(t *testing.T) {
	good := EncodeSubscription(Subscription{Topics: []string{"topic"}, Owned: map[string][]int32{"topic": {1}}}, 1)
	for name, b := range map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)-2],
		"negative":  {0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
	} {
		if _, err := DecodeSubscription(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestAssignmentRoundTrip(t *testing.T) {
	a := map[string][]int32{"b": {2}, "a": {0, 1}}
	b := EncodeAssignment(a, []byte("x"))
	got, ud, err := DecodeAssignment(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if string(ud) != "x" {
		t.Errorf("user data %q", ud)
	}

	// franz-go's consumer reads what our leader writes.
	fromKgo, err := kgo.CooperativeStickyBalancer().ParseSyncAssignment(EncodeAssignment(a, nil))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, fromKgo); diff != "" {
		t.Errorf("franz-go read (-want +got):\n%s", diff)
	}
}

// What a franz-go (or Java) leader sends in SyncGroup, at any version.
func TestDecodeKmsgAssignment(t *testing.T) {
	for _, v := range []int16{0, 1, 2, 3} {
		m := kmsg.NewConsumerMemberAssignment()
		m.Version = v
		for _, topic := range []string{"t0", "t1"} {
			at := kmsg.NewConsumerMemberAssignmentTopic()
			at.Topic = topic
			at.Partitions = []int32{0, 3}
			m.Topics = append(m.Topics, at)
		}
		got, ud, err := DecodeAssignment(m.AppendTo(nil))
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if diff := cmp.Diff(map[string][]int32{"t0": {0, 3}, "t1": {0, 3}}, got); diff != "" {
			t.Errorf("v%d (-want +got):\n%s", v, diff)
		}
		if ud != nil {
			t.Errorf("v%d: user data %q", v, ud)
		}
	}
}

// The coordinator gives a member the leader left out of its plan no bytes
// at all: that is an empty assignment, not an error.
func TestDecodeEmptyAssignment(t *testing.T) {
	got, _, err := DecodeAssignment(nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, _, err := DecodeAssignment([]byte{0, 0, 0}); err == nil {
		t.Error("decoded three bytes")
	}
}
