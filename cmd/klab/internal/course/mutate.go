package course

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"klab.dev/klab/lessons"
)

// Generic mutation testing: `klab course mutate NN` makes small changes
// to lesson NN's regions of the reference code — the ones mutation testers
// such as PIT and go-mutesting make — and runs the lesson's tests on each.
// A change no test notices (a survivor) is either code the tests do not
// specify, or equivalent to the original; the lesson's author decides which
// and strengthens the tests or records why in docs/course-guide.md.

// Mutation is one generic change to a reference file.
type Mutation struct {
	File     string // from the repository root
	Line     int
	Region   string
	Operator string // "boundary", "negate", "arithmetic", "off-by-one", "drop statement", "drop error check"
	From, To string // the text changed, for the report
	start    int    // byte offsets of the change in the file
	end      int
}

func (m Mutation) String() string {
	to := m.To
	if to == "" {
		to = "(nothing)"
	}
	return fmt.Sprintf("%s:%d %s: %s → %s", m.File, m.Line, m.Operator, oneLine(m.From), oneLine(to))
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 70 {
		s = string(r[:70]) + "…"
	}
	return s
}

// Mutations lists the generic mutations of lesson l's regions.
func (c *Course) Mutations(l lessons.Lesson) ([]Mutation, error) {
	byFile := map[string][]Region{}
	var files []string
	for _, r := range c.RegionsOf(l.Number) {
		if byFile[r.File] == nil {
			files = append(files, r.File)
		}
		byFile[r.File] = append(byFile[r.File], r)
	}
	var out []Mutation
	for _, file := range files {
		src, err := os.ReadFile(filepath.Join(c.Root, file))
		if err != nil {
			return nil, err
		}
		ms, err := mutationsOf(file, src, byFile[file])
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// mutationsOf finds the mutations of one file's regions.
func mutationsOf(file string, src []byte, regions []Region) ([]Mutation, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	lines := strings.SplitAfter(string(src), "\n")
	type span struct {
		name     string
		from, to int // lines, 1-based, [from, to)
	}
	var spans []span
	for _, r := range regions {
		start, end, err := regionBody(lines, r.Line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		spans = append(spans, span{r.Name, start + 1, end + 1})
	}
	regionOf := func(n ast.Node) string {
		from, to := fset.Position(n.Pos()).Line, fset.Position(n.End()).Line
		for _, s := range spans {
			if from >= s.from && to < s.to {
				return s.name
			}
		}
		return ""
	}
	text := func(n ast.Node) string {
		return string(src[fset.Position(n.Pos()).Offset:fset.Position(n.End()).Offset])
	}
	var out []Mutation
	add := func(n ast.Node, start, end token.Pos, op, to string) {
		region := regionOf(n)
		if region == "" {
			return
		}
		s, e := fset.Position(start).Offset, fset.Position(end).Offset
		out = append(out, Mutation{File: file, Line: fset.Position(start).Line, Region: region, Operator: op,
			From: string(src[s:e]), To: to, start: s, end: e})
	}
	swaps := map[token.Token][]struct {
		to token.Token
		op string
	}{
		token.LSS:  {{token.LEQ, "boundary"}},
		token.LEQ:  {{token.LSS, "boundary"}},
		token.GTR:  {{token.GEQ, "boundary"}},
		token.GEQ:  {{token.GTR, "boundary"}},
		token.EQL:  {{token.NEQ, "negate"}},
		token.NEQ:  {{token.EQL, "negate"}},
		token.LAND: {{token.LOR, "negate"}},
		token.LOR:  {{token.LAND, "negate"}},
		token.ADD:  {{token.SUB, "arithmetic"}},
		token.SUB:  {{token.ADD, "arithmetic"}},
		token.MUL:  {{token.QUO, "arithmetic"}},
		token.QUO:  {{token.MUL, "arithmetic"}},
	}
	// The values returned beside an error are not read by a caller that
	// checks the error: changing them is an equivalent mutant.
	var errorReturns [][2]token.Pos
	ast.Inspect(f, func(n ast.Node) bool {
		if r, ok := n.(*ast.ReturnStmt); ok && len(r.Results) > 1 {
			if id, ok := r.Results[len(r.Results)-1].(*ast.Ident); !ok || id.Name != "nil" {
				errorReturns = append(errorReturns, [2]token.Pos{r.Pos(), r.End()})
			}
		}
		return true
	})
	inErrorReturn := func(n ast.Node) bool {
		for _, r := range errorReturns {
			if n.Pos() >= r[0] && n.End() <= r[1] {
				return true
			}
		}
		return false
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BinaryExpr:
			for _, s := range swaps[n.Op] {
				add(n, n.OpPos, n.OpPos+token.Pos(len(n.Op.String())), s.op, s.to.String())
			}
			// x + 1, x - 1: the one dropped.
			if lit, ok := n.Y.(*ast.BasicLit); ok && lit.Kind == token.INT && lit.Value == "1" && (n.Op == token.ADD || n.Op == token.SUB) {
				add(n, n.Pos(), n.End(), "off-by-one", text(n.X))
			}
		case *ast.BasicLit:
			if v, err := strconv.ParseInt(n.Value, 0, 64); err == nil && n.Kind == token.INT && !inErrorReturn(n) {
				add(n, n.Pos(), n.End(), "off-by-one", strconv.FormatInt(v+1, 10))
			}
		case *ast.IncDecStmt:
			to := "--"
			if n.Tok == token.DEC {
				to = "++"
			}
			add(n, n.TokPos, n.TokPos+2, "arithmetic", to)
		case *ast.IfStmt:
			add(n, n.Cond.Pos(), n.Cond.End(), "negate", "!("+text(n.Cond)+")")
		case *ast.BlockStmt:
			for _, st := range n.List {
				switch st := st.(type) {
				case *ast.ExprStmt, *ast.IncDecStmt, *ast.DeferStmt, *ast.GoStmt, *ast.SendStmt, *ast.BranchStmt:
					add(st, st.Pos(), st.End(), "drop statement", "")
				case *ast.AssignStmt:
					if st.Tok != token.DEFINE {
						add(st, st.Pos(), st.End(), "drop statement", "")
					}
				case *ast.IfStmt:
					if st.Init == nil && st.Else == nil && isErrCheck(text(st.Cond)) {
						add(st, st.Pos(), st.End(), "drop error check", "")
					}
				}
			}
		}
		return true
	})
	return out, nil
}

// isErrCheck reports whether cond tests an error: err != nil, and the like.
func isErrCheck(cond string) bool {
	return strings.Contains(cond, "err") && strings.Contains(cond, "!= nil")
}

// apply returns the file's source with the mutation made.
func (m Mutation) apply(src []byte) []byte {
	out := append([]byte{}, src[:m.start]...)
	out = append(out, m.To...)
	return append(out, src[m.end:]...)
}

// MutateReport is the outcome of a generic mutation pass.
type MutateReport struct {
	Killed, Survived, Invalid int
	Survivors                 []Mutation
}

// Score is the share of valid mutants the tests killed.
func (r MutateReport) Score() float64 {
	if r.Killed+r.Survived == 0 {
		return 0
	}
	return float64(r.Killed) / float64(r.Killed+r.Survived)
}

// Mutate runs the generic mutation pass on lesson l, writing a line per
// mutant to w as it goes, and returns the tally. only, if not empty,
// keeps the mutations whose description contains it.
func (c *Course) Mutate(w io.Writer, l lessons.Lesson, only string) (MutateReport, error) {
	var rep MutateReport
	muts, err := c.Mutations(l)
	if err != nil {
		return rep, err
	}
	tmp, err := os.MkdirTemp("", "klab-mutate")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(tmp)
	base, err := c.buildVariant(l, nil, tmp, "solution")
	if err != nil {
		return rep, fmt.Errorf("lesson %s: the solution: %w", l.Number, err)
	}
	o := base.run(10 * time.Minute)
	if o.Caught {
		return rep, fmt.Errorf("lesson %s: the solution fails its tests (%s):\n%s", l.Number, o.By, indent(o.Output))
	}
	timeout := 3*o.Duration + 20*time.Second
	fmt.Fprintf(w, "lesson %s: %d mutants of %d regions; the solution's tests take %s, a mutant gets %s\n",
		l.Number, len(muts), len(c.RegionsOf(l.Number)), o.Duration.Round(time.Millisecond), timeout.Round(time.Second))
	sources := map[string][]byte{}
	for i, m := range muts {
		if only != "" && !strings.Contains(m.String(), only) {
			continue
		}
		if sources[m.File] == nil {
			if sources[m.File], err = os.ReadFile(filepath.Join(c.Root, m.File)); err != nil {
				return rep, err
			}
		}
		prefix := fmt.Sprintf("[%d/%d] %s", i+1, len(muts), m)
		v, err := c.buildVariant(l, map[string][]byte{m.File: m.apply(sources[m.File])}, tmp, fmt.Sprintf("m%d", i))
		var be *buildError
		switch {
		case errors.As(err, &be):
			rep.Invalid++
			fmt.Fprintf(w, "%s: does not compile\n", prefix)
			continue
		case err != nil:
			return rep, err
		}
		o := v.run(timeout)
		os.RemoveAll(v.dir)
		if o.Caught {
			rep.Killed++
			fmt.Fprintf(w, "%s: killed by %s\n", prefix, o.By)
		} else {
			rep.Survived++
			rep.Survivors = append(rep.Survivors, m)
			fmt.Fprintf(w, "%s: SURVIVED\n", prefix)
		}
	}
	fmt.Fprintf(w, "\nlesson %s: score %.0f%% — %d killed, %d survived, %d did not compile\n",
		l.Number, 100*rep.Score(), rep.Killed, rep.Survived, rep.Invalid)
	if len(rep.Survivors) > 0 {
		fmt.Fprintln(w, "survivors (strengthen the tests, or record in docs/course-guide.md why each is equivalent):")
		for _, m := range rep.Survivors {
			fmt.Fprintf(w, "  %s   [%s]\n", m, m.Region)
		}
	}
	return rep, nil
}
