// Package lessons is the course's table of contents: the numbered lessons,
// where each one lives, and the error an exercise's stubs return until the
// student writes the missing code.
//
// Each lesson is a folder lessons/NN-slug/ holding its README.md and its
// tests. The tests are written against the reference code (broker/,
// producer/, ...); `klab course gen` copies them into exercises/NN-slug/,
// where they run against the student's stubs, and into solutions/NN-slug/.
package lessons

import "fmt"

// Lesson is one lesson of the course.
type Lesson struct {
	Number string // two digits, "01"
	Slug   string // the folder's name after the number, "commit-log"
	Title  string
}

// Dir is the lesson's folder name, "01-commit-log".
func (l Lesson) Dir() string { return l.Number + "-" + l.Slug }

// README is the path of the lesson's text from the repository root.
func (l Lesson) README() string { return "lessons/" + l.Dir() + "/README.md" }

// Tour is lesson 00, a walk through the running cluster before any code:
// run it, watch it in the web console, produce and consume with kcat, kill
// a broker and watch the ISR shrink and the leader move. It has a README
// and nothing to write, so it is not in All, whose lessons each have an
// exercise and a solution.
var Tour = Lesson{"00", "see-the-cluster", "See the cluster: run it, watch it in the console, break it"}

// All lists the lessons that exist, in course order.
var All = []Lesson{
	{"01", "commit-log", "The commit log: append, offsets, segments, index, recovery, retention"},
	{"02", "records-and-batches", "Records and batches: the v2 record batch, CRC, compaction"},
	{"03", "speaking-kafka", "Speaking Kafka: the wire protocol, Produce and Fetch"},
	{"04", "producer", "The producer: partitioner, batching, acks, sync and async sends"},
	{"05", "consumer", "The consumer: fetching, positions, auto.offset.reset"},
	{"06", "replication", "Replication: leader and followers, the high watermark, the ISR, acks=all"},
	{"07", "controller", "The controller and membership: leader election, epochs, preferred leaders, racks"},
	{"08", "follower-reads", "Reading from followers: client.rack and the preferred read replica"},
	{"09", "idempotent-producer", "The idempotent producer: producer ids, epochs, sequence numbers, retries written once"},
	{"10", "consumer-groups", "Consumer groups: the coordinator, rebalances, heartbeats, committed offsets, the range assignor"},
	{"11", "administration", "Administration: controlled shutdown, partition reassignment, preferred leaders, forwarding to the controller"},
	{"12", "streams", "Streams: the processor API, punctuations, and the DSL written on it"},
	{"13", "stream-table-duality", "Stream-table duality: tables, aggregations, state stores and their changelogs"},
}

// Find returns the lesson with the given number, "01" or "1".
func Find(number string) (Lesson, bool) {
	if len(number) == 1 {
		number = "0" + number
	}
	for _, l := range All {
		if l.Number == number {
			return l, true
		}
	}
	return Lesson{}, false
}

// TodoError is what a stub in an exercise returns: the piece of the lesson
// that is still to be written.
type TodoError struct {
	Lesson   Lesson
	Function string
}

func (e *TodoError) Error() string {
	return fmt.Sprintf("lesson %s: implement %s — see %s", e.Lesson.Number, e.Function, e.Lesson.README())
}

// Todo returns the error for function, a piece of lesson number that the
// student has not written yet. Exercises call it from their stubs.
func Todo(number, function string) error {
	l, ok := Find(number)
	if !ok {
		l = Lesson{Number: number, Slug: "unknown"}
	}
	return &TodoError{Lesson: l, Function: function}
}
