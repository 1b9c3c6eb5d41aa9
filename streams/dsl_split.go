package streams

import "strconv"

// BranchedKStream splits a stream by predicates, as Kafka's split():
// each record goes to the first branch whose predicate it meets, and only
// there; records that meet none go to the default branch, or are dropped
// if there is none.
type BranchedKStream[K, V any] struct {
	s        KStream[K, V]
	prefix   string
	node     string
	split    *splitProcessor // its branches, filled in by Branch and DefaultBranch
	branches map[string]KStream[K, V]
}

// Split starts a split of s; the branches' names start with prefix.
func (s KStream[K, V]) Split(prefix string) *BranchedKStream[K, V] {
	b := &BranchedKStream[K, V]{s: s, prefix: prefix, split: &splitProcessor{}, branches: map[string]KStream[K, V]{}}
	// As Kafka names them: the split node is called prefix, and its
	// branches prefix+name.
	b.node = s.b.name(prefix, "KSTREAM-BRANCH")
	if prefix == "" {
		b.prefix = b.node + "-"
	}
	template := b.split
	s.b.topo.AddProcessor(b.node, func() Processor {
		p := *template // each task gets its own, with the branches as they are by then
		return &p
	}, s.node)
	return b
}

// Branch adds a branch of the records for which keep is true (and no
// earlier branch's predicate was). An empty name is the branch's number,
// from 1.
func (b *BranchedKStream[K, V]) Branch(name string, keep func(K, V) bool) *BranchedKStream[K, V] {
	b.add(name, func(r Record) (bool, error) {
		k, v, err := kv[K, V](r, b.node)
		return err == nil && keep(k, v), err
	})
	return b
}

// DefaultBranch adds the branch of the records no predicate kept, and
// returns every branch, by name.
func (b *BranchedKStream[K, V]) DefaultBranch(name string) map[string]KStream[K, V] {
	if name == "" {
		name = "0"
	}
	child := b.child(name)
	b.split.defaultChild = child
	return b.branches
}

// NoDefaultBranch returns every branch, by name: records no predicate kept
// are dropped.
func (b *BranchedKStream[K, V]) NoDefaultBranch() map[string]KStream[K, V] { return b.branches }

func (b *BranchedKStream[K, V]) add(name string, keep func(Record) (bool, error)) {
	if name == "" {
		name = strconv.Itoa(len(b.split.branches) + 1)
	}
	child := b.child(name)
	b.split.branches = append(b.split.branches, branch{child: child, keep: keep})
}

// child adds the pass-through node a branch's stream starts at.
func (b *BranchedKStream[K, V]) child(name string) string {
	full := b.prefix + name
	b.s.b.topo.AddProcessor(full, ProcessorFunc(func(ctx *ProcessorContext, r Record) error {
		return ctx.Forward(r)
	}).Supplier(), b.node)
	b.branches[full] = b.s.derive(full)
	return full
}

// branch is one branch of a split: its predicate, and the child node its
// records go to.
type branch struct {
	child string
	keep  func(Record) (bool, error)
}

// splitProcessor sends each record to one branch of a split.
type splitProcessor struct {
	ctx          *ProcessorContext
	branches     []branch
	defaultChild string // "" if there is no default branch
}

func (p *splitProcessor) Init(ctx *ProcessorContext) error { p.ctx = ctx; return nil }
func (p *splitProcessor) Close() error                     { return nil }

//klab:lesson 12 begin (*splitProcessor).Process

// Process sends r to the child of the first branch whose predicate keeps
// it, in the order the branches were added, and to no other; a record no
// predicate keeps goes to the default branch, or nowhere if the split has
// none.
func (p *splitProcessor) Process(r Record) error {
	for _, b := range p.branches {
		keep, err := b.keep(r)
		if err != nil {
			return err
		}
		if keep {
			return p.ctx.ForwardTo(b.child, r)
		}
	}
	if p.defaultChild != "" {
		return p.ctx.ForwardTo(p.defaultChild, r)
	}
	return nil
}

//klab:lesson 12 stub
// func (p *splitProcessor) Process(r Record) error {
// 	return lessons.Todo("12", "(*splitProcessor).Process")
// }
//klab:lesson 12 end
