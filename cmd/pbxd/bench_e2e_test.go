//go:build bench

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBench measures the running binary: seeding 10,000 users through the
// API, time from `pbxd serve` to ready with them, idle RSS, a Bearer-token
// load on GET /users/{id}, and searches at 10,000 users. Every loop is
// bounded in count and time; traffic stays on loopback.
func TestBench(t *testing.T) {
	dir := t.TempDir()
	p := startAdmin(t, dir)
	admin := p.login("admin", e2eAdminPassword)
	su := p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "bench", "permissions": []string{"users:read"}}).want(t, 201)
	svcTok := su.str("token")

	const n = 10_000
	ids := make([]string, n)
	seedStart := time.Now()
	var wg sync.WaitGroup
	jobs := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				r := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": fmt.Sprintf("user%05d@example.com", i),
					"firstName": fmt.Sprintf("First%d", i), "lastName": fmt.Sprintf("Last%d", i%977), "extension": fmt.Sprint(20000 + i)})
				if r.code != 201 {
					t.Errorf("seed %d: %d %s", i, r.code, r.raw)
					return
				}
				ids[i] = r.str("id")
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	seed := time.Since(seedStart)
	fmt.Printf("BENCH user create via API (fsync, 8 clients): %d users in %v = %.0f/s\n", n, seed.Round(time.Millisecond), float64(n)/seed.Seconds())
	p.Stop()

	// Time to ready with 10,000 users, over 5 restarts.
	var readies []time.Duration
	var q *proc
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		q = start(t, startOpts{dataDir: dir})
		readies = append(readies, time.Since(t0))
		if i < 4 {
			q.Stop()
		}
	}
	sort.Slice(readies, func(i, j int) bool { return readies[i] < readies[j] })
	fmt.Printf("BENCH serve → ready with %d users: median %v, max %v (process start to the ready log line)\n", n,
		readies[2].Round(time.Millisecond), readies[4].Round(time.Millisecond))

	time.Sleep(3 * time.Second)
	fmt.Printf("BENCH idle RSS with %d users: %s\n", n, rss(q.cmd.Process.Pid))

	// Bearer load on GET /users/{id}.
	for _, tc := range []struct{ name, tok string }{{"service-user token", svcTok}, {"session token", q.login("admin", e2eAdminPassword)}} {
		lat, dur := load(t, q.base, tc.tok, ids, 16, 5*time.Second, 200_000)
		fmt.Printf("BENCH GET /api/v1/users/{id} with %s, 16 clients: %d requests in %v = %.0f req/s, p50 %v p99 %v\n",
			tc.name, len(lat), dur.Round(time.Millisecond), float64(len(lat))/dur.Seconds(), pct(lat, 50), pct(lat, 99))
	}
	fmt.Printf("BENCH RSS after load: %s\n", rss(q.cmd.Process.Pid))

	for _, path := range []string{"/api/v1/users?q=last42&fields=*", "/api/v1/users?q=user09999", "/api/v1/users?rows=50&start=5000&fields=*"} {
		var lat []time.Duration
		for i := 0; i < 30; i++ {
			t0 := time.Now()
			q.do("GET", path, svcTok, nil).want(t, 200)
			lat = append(lat, time.Since(t0))
		}
		fmt.Printf("BENCH GET %s at %d users: p50 %v p99 %v\n", path, n, pct(lat, 50), pct(lat, 99))
	}
	fmt.Printf("BENCH GOMAXPROCS=%d GOGC=%q\n", runtime.GOMAXPROCS(0), os.Getenv("GOGC"))
}

// load runs clients goroutines for at most d or max requests in all.
func load(t *testing.T, base, tok string, ids []string, clients int, d time.Duration, max int) ([]time.Duration, time.Duration) {
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	per := max / clients
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			for i := 0; i < per && time.Now().Before(deadline); i++ {
				req, _ := http.NewRequest("GET", base+"/api/v1/users/"+ids[(w*7919+i)%len(ids)], nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				t0 := time.Now()
				res, err := c.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				var buf [4096]byte
				for {
					if _, err := res.Body.Read(buf[:]); err != nil {
						break
					}
				}
				res.Body.Close()
				if res.StatusCode != 200 {
					t.Errorf("status %d", res.StatusCode)
					return
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	return all, time.Since(start)
}

func pct(lat []time.Duration, p int) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100].Round(time.Microsecond)
}

func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strings.Join(strings.Fields(line)[1:], " ")
		}
	}
	return "?"
}

// registerStep is one SIPp REGISTER step's outcome.
type registerStep struct {
	rate, ok, failed int
	wall             time.Duration
	cpuPerReg        float64 // µs
}

var registerRates = []int{500, 1000, 2000, 3000}

// registerSteps runs the REGISTER steps against target; cpu reports the
// CPU the element under test has used so far.
func registerSteps(t *testing.T, target, csv string, cpu func() time.Duration) []registerStep {
	var out []registerStep
	for _, rate := range registerRates {
		c0, t0 := cpu(), time.Now()
		res := runSIPpLoad(t, "register.xml", target, csv, rate, rate*8)
		st := registerStep{rate: rate, wall: time.Since(t0)}
		st.ok, st.failed = sippCounts(res)
		st.cpuPerReg = float64((cpu() - c0).Microseconds()) / float64(max(st.ok, 1))
		out = append(out, st)
	}
	return out
}

// TestBenchRegister drives REGISTER with digest through SIPp at fixed
// rates, bounded in count and time, against pbxd and then Kamailio (the
// reference registrar) with the same 200 credentials, and prints both and
// their ratios.
func TestBenchRegister(t *testing.T) {
	needSIPp(t)
	p := start(t, startOpts{env: []string{"PBXD_ADMIN_PASSWORD=" + e2eAdminPassword}, args: strings.Fields(os.Getenv("PBXD_BENCH_ARGS"))})
	admin := p.login("admin", e2eAdminPassword)
	const devices = 200
	var csv strings.Builder
	var creds [][2]string
	csv.WriteString("SEQUENTIAL\n")
	for i := 0; i < devices; i++ {
		uid := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": fmt.Sprintf("r%03d", i)}).want(t, 201).str("id")
		user, pw := fmt.Sprintf("dev%03d", i), fmt.Sprintf("devpass%03d", i)
		p.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "d", "username": user, "password": pw}).want(t, 201)
		fmt.Fprintf(&csv, "%s;[authentication username=%s password=%s]\n", user, user, pw)
		creds = append(creds, [2]string{user, pw})
	}
	ours := registerSteps(t, p.sip, csv.String(), func() time.Duration { return cpuTime(p.cmd.Process.Pid) })
	p.Stop()
	var ref []registerStep
	if addr, pid, ok := startKamailio(t, creds); ok {
		ref = registerSteps(t, addr, csv.String(), func() time.Duration { return groupCPU(pid) })
	}
	for i, st := range ours {
		fmt.Printf("BENCH REGISTER+digest at %d/s offered: pbxd %d ok, %d failed = %.0f/s, %.0f µs CPU per registration",
			st.rate, st.ok, st.failed, float64(st.ok)/st.wall.Seconds(), st.cpuPerReg)
		if ref != nil {
			k := ref[i]
			fmt.Printf(" | Kamailio %d ok, %d failed = %.0f/s, %.0f µs | completed ratio pbxd/Kamailio %.2f, CPU ratio %.1f×",
				k.ok, k.failed, float64(k.ok)/k.wall.Seconds(), k.cpuPerReg, float64(st.ok)/float64(max(k.ok, 1)), st.cpuPerReg/max(k.cpuPerReg, 1))
		}
		fmt.Println()
	}
}

// cpuTime is the user+system CPU a process has used.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ = 100
}

// runSIPpLoad runs scenario at rate calls/s for count calls (bounded by a
// timeout) and returns SIPp's final statistics, failed calls included.
func runSIPpLoad(t *testing.T, scenario, target, inject string, rate, count int) string {
	t.Helper()
	sipp := needSIPp(t)
	dir := t.TempDir()
	inf := filepath.Join(dir, "inject.csv")
	if err := os.WriteFile(inf, []byte(inject), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(count/rate+60)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, target, "-sf", filepath.Join("testdata", "sipp", scenario), "-inf", inf,
		"-i", "127.0.0.1", "-p", strconv.Itoa(freeUDPPort(t)), "-r", strconv.Itoa(rate), "-m", strconv.Itoa(count),
		"-l", strconv.Itoa(rate), "-timeout", strconv.Itoa(count/rate+30)+"s", "-nostdin", "-buff_size", "4194304", "-trace_err", "-error_file", filepath.Join(dir, "errors.log"))
	out, _ := cmd.CombinedOutput()
	if errs, _ := os.ReadFile(filepath.Join(dir, "errors.log")); len(errs) > 0 {
		fmt.Printf("BENCH first SIPp errors:\n%s\n", tail(string(errs[:min(len(errs), 1500)]), 1500))
	}
	return string(out)
}

// sippCounts reads the cumulative successful and failed calls.
func sippCounts(out string) (ok, failed int) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 6 && f[0] == "Successful" && f[1] == "call":
			ok, _ = strconv.Atoi(f[5])
		case len(f) >= 6 && f[0] == "Failed" && f[1] == "call":
			failed, _ = strconv.Atoi(f[5])
		}
	}
	return ok, failed
}
