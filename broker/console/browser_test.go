package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
)

// chromium finds a Chromium to drive: $KLAB_CHROMIUM, else one on the
// PATH. Without one the browser tests are skipped, except where
// KLAB_REQUIRE_CHROMIUM is set: .ci/run installs Debian's chromium and
// sets it, so that CI cannot pass by skipping.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KLAB_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("KLAB_REQUIRE_CHROMIUM") != "" {
		t.Fatal("no Chromium on the PATH: .ci/run installs Debian's chromium package")
	}
	t.Skip("no Chromium on the PATH (apt-get install chromium, or set KLAB_CHROMIUM): the console's browser test is skipped")
	return ""
}

// browser starts a headless Chromium for the test and returns a context
// to drive it with.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // tests may run as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1100),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx), "starting Chromium")
	return ctx
}

// hostileGroup is a group name that would run a script if the page put it
// in as HTML. Kafka accepts any string as a group id.
const hostileGroup = `<img src=x onerror="window.pwned=1">`

// TestConsoleShowsABrokerDying opens a broker's console in Chromium, kills
// the leader of a partition replicated on three brokers, and checks that
// the page shows, within seconds: the broker dead, the ISR without it, and
// a new leader. It saves a screenshot before and after (go test -artifacts
// keeps them). The page also shows a group whose name is HTML, as text.
func TestConsoleShowsABrokerDying(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers and Chromium")
	}
	ctx := browser(t)
	c := clustertest.Start(t, clustertest.Options{Configure: func(cfg *broker.Config) { cfg.Console = "127.0.0.1:0" }})
	c.CreateTopic("orders", 1, 3, nil, nil)
	leader := c.WaitFullISR("orders", 0, 20*time.Second)

	cl := c.Client(kgo.DefaultProduceTopic("orders"))
	for i := range 20 {
		require.NoError(t, cl.ProduceSync(context.Background(), kgo.StringRecord(fmt.Sprint("order ", i))).FirstErr())
	}
	adm := kadm.NewClient(cl)
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 15, LeaderEpoch: -1})
	committed, err := adm.CommitOffsets(context.Background(), hostileGroup, commit)
	require.NoError(t, err)
	require.NoError(t, committed.Error())

	// The page comes from a broker that survives.
	served := c.IDs()[0]
	if served == leader {
		served = c.IDs()[1]
	}
	url := "http://" + c.Broker(served).ConsoleAddr() + "/"
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(url)))

	row := `document.querySelector('tr[data-topic="orders"][data-partition="0"]')`
	state := func() (pageState, error) {
		return chromedp.Run(ctx, chromedp.Evaluate[pageState](`(() => {
			const row = `+row+`;
			const field = f => row ? row.querySelector('[data-field="' + f + '"]').textContent : "";
			const dead = [...document.querySelectorAll('.broker[data-state="dead"]')].map(b => Number(b.dataset.broker));
			const group = document.querySelector('[data-group] [data-field="name"]');
			const lag = document.querySelector('[data-group] tr[data-topic="orders"] [data-field="lag"]');
			return {leader: field("leader"), isr: field("isr"), hw: field("hw"), status: field("status"),
				dead, group: group ? group.textContent : "", lag: lag ? lag.textContent : "",
				live: document.getElementById("status").dataset.status,
				pwned: window.pwned !== undefined, images: document.querySelectorAll("img").length};
		})()`))
	}
	waitPage := func(what string, timeout time.Duration, ok func(pageState) bool) (pageState, time.Duration) {
		t.Helper()
		start := time.Now()
		var last pageState
		for time.Since(start) < timeout {
			s, err := state()
			require.NoError(t, err)
			if ok(s) {
				return s, time.Since(start)
			}
			last = s
			time.Sleep(100 * time.Millisecond) // the page's next event; we only read it
		}
		t.Fatalf("the console did not show %s within %v; it shows %+v", what, timeout, last)
		return last, 0
	}

	before, _ := waitPage("the partition fully replicated, its high watermark at 20 and the group's lag", 15*time.Second, func(s pageState) bool {
		return sameSet(s.ISR, "1,2,3") && s.Leader == fmt.Sprint(leader) && s.HW == "20" && s.Status == "ok" && s.Lag == "5" && s.Live == "live"
	})
	require.Equal(t, hostileGroup, before.Group, "the group's name is shown as the characters it is")
	require.False(t, before.Pwned, "the group's name ran as HTML")
	require.Zero(t, before.Images, "the group's name made an element")
	screenshot(t, ctx, "before.png")

	c.Kill(leader)
	killed := fmt.Sprint(leader)
	after, took := waitPage(fmt.Sprintf("broker %d dead, out of the ISR, and another leader", leader), 15*time.Second, func(s pageState) bool {
		isr := strings.Split(s.ISR, ",")
		return slices.Contains(s.Dead, int(leader)) && len(isr) == 2 && !slices.Contains(isr, killed) &&
			s.Leader != killed && s.Leader != "none" && s.Status == "under-replicated"
	})
	t.Logf("the page showed broker %d dead, ISR %s and leader %s %v after the kill", leader, after.ISR, after.Leader, took.Round(10*time.Millisecond))
	screenshot(t, ctx, "after.png")
}

// pageState is what the browser test reads off the page.
type pageState struct {
	Leader string `json:"leader"`
	ISR    string `json:"isr"`
	HW     string `json:"hw"`
	Status string `json:"status"`
	Dead   []int  `json:"dead"`
	Group  string `json:"group"`
	Lag    string `json:"lag"`
	Live   string `json:"live"`
	Pwned  bool   `json:"pwned"`
	Images int    `json:"images"`
}

func sameSet(csv, want string) bool {
	got := strings.Split(csv, ",")
	slices.Sort(got)
	return strings.Join(got, ",") == want
}

// screenshot saves the page in the test's artifact directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	path := filepath.Join(t.ArtifactDir(), name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}
