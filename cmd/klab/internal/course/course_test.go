package course

import (
	"go/ast"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"klab.dev/klab/lessons"
)

const reference = `package demo

import (
	"errors"
	"strings"
)

func upper(s string) (string, error) {
	//klab:lesson 01 begin upper
	if s == "" {
		return "", errors.New("empty")
	}
	return strings.ToUpper(s), nil
	//klab:lesson 01 stub
	// return "", lessons.Todo("01", "upper")
	//klab:lesson 01 end
}

func lower(s string) string {
	//klab:lesson 02 begin lower
	return strings.ToLower(s)
	//klab:lesson 02 stub
	// panic(lessons.Todo("02", "lower"))
	//klab:lesson 02 end
}
`

func TestRenderGivesTheStubToItsLessonOnly(t *testing.T) {
	ex, regions, err := render("demo.go", []byte(reference), "01")
	require.NoError(t, err)
	assert.Equal(t, []Region{
		{Lesson: "01", Name: "upper", File: "demo.go", Line: 9},
		{Lesson: "02", Name: "lower", File: "demo.go", Line: 20},
	}, regions)
	s := string(ex)
	assert.Contains(t, s, "\t// TODO(lesson 01): write upper. See lessons/01-commit-log/README.md.\n\treturn \"\", lessons.Todo(\"01\", \"upper\")\n")
	assert.NotContains(t, s, "strings.ToUpper", "lesson 01's reference code is gone from its exercise")
	assert.Contains(t, s, "return strings.ToLower(s)", "lesson 02's region keeps its reference code")
	assert.NotContains(t, s, "//klab:", "markers never reach a generated file")

	sol, _, err := render("demo.go", []byte(reference), "")
	require.NoError(t, err)
	assert.Contains(t, string(sol), "strings.ToUpper")
	assert.NotContains(t, string(sol), "lessons.Todo")
}

func TestRenderRejectsMalformedRegions(t *testing.T) {
	for name, src := range map[string]string{
		"unclosed":       "//klab:lesson 01 begin f\nx\n//klab:lesson 01 stub\n// y\n",
		"no stub":        "//klab:lesson 01 begin f\nx\n//klab:lesson 01 end\n",
		"nested":         "//klab:lesson 01 begin f\n//klab:lesson 02 begin g\n",
		"unnamed":        "//klab:lesson 01 begin\n",
		"unknown lesson": "//klab:lesson 99 begin f\n",
		"code in stub":   "//klab:lesson 01 begin f\nx\n//klab:lesson 01 stub\ny\n//klab:lesson 01 end\n",
	} {
		_, _, err := render("bad.go", []byte(src), "01")
		assert.Error(t, err, name)
	}
}

func TestFixupRewritesImportsAndDropsUnusedOnes(t *testing.T) {
	ex, _, err := render("demo.go", []byte(reference), "01")
	require.NoError(t, err)
	out, err := fixup("demo.go", "// header\n\n", ex, nil, "klab.dev/klab/lessons")
	require.NoError(t, err)
	s := string(out)
	assert.NotContains(t, s, `"errors"`, "only the removed reference code used errors")
	assert.Contains(t, s, `"strings"`, "lesson 02's code still uses strings")
	assert.Contains(t, s, `"klab.dev/klab/lessons"`, "the stub needs the lessons package")
	assert.True(t, strings.HasPrefix(s, "// header\n"))

	test := "package x_test\n\nimport \"klab.dev/klab/broker/log\"\n\nvar _ = log.Open\n"
	out, err = fixup("x_test.go", "", []byte(test), map[string]string{"klab.dev/klab/broker/log": "klab.dev/klab/exercises/01-commit-log/broker/log"}, "")
	require.NoError(t, err)
	assert.Contains(t, string(out), `"klab.dev/klab/exercises/01-commit-log/broker/log"`)
}

func TestOwned(t *testing.T) {
	for p, want := range map[string]bool{
		"exercises/go.mod":                           true,
		"exercises/01-commit-log/broker/log/log.go":  true,
		"solutions/02-records-and-batches/x_test.go": true,
		"exercises/README.md":                        false,
		"solutions/README.md":                        false,
		"broker/log/log.go":                          false,
		"exercises/notes/x.go":                       false,
	} {
		assert.Equal(t, want, Owned(p), p)
	}
}

// TestGeneratedTreesAreCurrent is the check CI makes: exercises/ and
// solutions/ are exactly what gen makes from the reference code.
func TestGeneratedTreesAreCurrent(t *testing.T) {
	root, err := FindRoot(".")
	require.NoError(t, err)
	c, err := Scan(root)
	require.NoError(t, err)
	want, err := c.Generate()
	require.NoError(t, err)
	have, err := c.Existing()
	require.NoError(t, err)
	assert.Empty(t, Diff(want, have), "run: go run ./cmd/klab course gen")
}

// TestSolveAndResetRoundTrip copies the repository's course files into a
// temporary tree, solves lesson 01 there and resets it.
func TestSolveAndResetRoundTrip(t *testing.T) {
	root, err := FindRoot(".")
	require.NoError(t, err)
	tmp := t.TempDir()
	cp, err := exec.Command("cp", "-r", filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum"),
		filepath.Join(root, "lessons"), filepath.Join(root, "broker"), filepath.Join(root, "exercises"), tmp).CombinedOutput()
	require.NoError(t, err, "%s", cp)
	require.NoError(t, os.RemoveAll(filepath.Join(tmp, progressFile)))
	c, err := Scan(tmp)
	require.NoError(t, err)
	l := mustLesson(t, "01")

	progress, err := c.LoadProgress()
	require.NoError(t, err)
	st, err := c.Status(l, progress)
	require.NoError(t, err)
	assert.Equal(t, "not started", st.String())

	seg := filepath.Join(tmp, "exercises/01-commit-log/broker/log/segment.go")
	mine := []byte(strings.Replace(string(mustRead(t, seg)), "TODO(lesson 01)", "TODO(lesson 01) my notes", 1))
	require.NoError(t, os.WriteFile(seg, mine, 0o644))
	wrote, err := c.Put(l, true)
	require.NoError(t, err)
	assert.Contains(t, wrote, "exercises/01-commit-log/broker/log/segment.go.mine", "the student's changed file is kept")
	assert.Equal(t, mine, mustRead(t, seg+".mine"))
	assert.NotContains(t, string(mustRead(t, seg)), "lessons.Todo", "solved: no stubs left")
	st, err = c.Status(l, progress)
	require.NoError(t, err)
	assert.Equal(t, "changed since its last run", st.String())
	var out strings.Builder
	ok, err := c.Test(l, &out, TestOptions{})
	require.NoError(t, err)
	assert.True(t, ok, "solved, the exercise passes its tests:\n%s", out.String())
	assert.Contains(t, out.String(), "Lesson 01 passes")
	progress, err = c.LoadProgress()
	require.NoError(t, err)
	st, err = c.Status(l, progress)
	require.NoError(t, err)
	assert.Regexp(t, `^passing \(\d+ tests\)$`, st.String(), "the last run is remembered")

	wrote, err = c.Put(l, false)
	require.NoError(t, err)
	for _, w := range wrote {
		assert.NotContains(t, w, ".mine", "reset after solve backs up nothing: the solution is not the student's work")
	}
	assert.Equal(t, mine, mustRead(t, seg+".mine"), "the student's backup survives solve then reset")
	st, err = c.Status(l, progress)
	require.NoError(t, err)
	assert.Equal(t, "not started", st.String(), "reset puts the stubs back")

	out.Reset()
	ok, err = c.Test(l, &out, TestOptions{GoTestArgs: []string{"-run", "Append"}})
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Regexp(t, `0 of \d+ tests pass`, out.String())
	assert.Regexp(t, `lesson 01: implement \S+ — see \S+  \(hit \d+ times\)`, out.String(), "each stub is named once, with a count")
	assert.Contains(t, out.String(), "course hint 01")
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

func mustLesson(t *testing.T, n string) lessons.Lesson {
	t.Helper()
	l, ok := lessons.Find(n)
	require.True(t, ok)
	return l
}

// TestImportName: a file refers to an import by the name Go's tools
// assume from its path; the generator keeps the imports a file uses by it.
func TestImportName(t *testing.T) {
	for path, want := range map[string]string{
		"github.com/segmentio/kafka-go":    "kafka",
		"github.com/hashicorp/go-hclog":    "hclog",
		"github.com/twmb/franz-go/pkg/kgo": "kgo",
		"gopkg.in/yaml.v3":                 "yaml",
		"github.com/IBM/sarama":            "sarama",
		"math/rand/v2":                     "rand",
	} {
		is := &ast.ImportSpec{Path: &ast.BasicLit{Value: strconv.Quote(path)}}
		if got := importName(is); got != want {
			t.Errorf("importName(%q) = %q, want %q", path, got, want)
		}
	}
}
