//go:build bench

package main

import (
	"crypto/md5"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kamailioDigestAuth is the part of both Kamailio configurations that
// checks digest credentials: the subscriber table in db_text (DBDIR),
// locations in memory.
const kamailioDigestAuth = `loadmodule "db_text.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
modparam("auth_db", "db_url", "text://DBDIR")
modparam("auth_db", "calculate_ha1", yes)
modparam("auth_db", "password_column", "password")
modparam("auth_db", "load_credentials", "")
modparam("auth", "secret", "pbxd-bench-secret")
modparam("usrloc", "db_mode", 0)
`

// kamailioRegistrarRoute saves the location of a REGISTER that passes the
// digest check (kamailioDigestAuth) and challenges the others.
const kamailioRegistrarRoute = `route[REGISTRAR] {
	if (!auth_check("$fd", "subscriber", "1")) { auth_challenge("$fd", "1"); exit; }
	consume_credentials();
	if (!save("location")) { sl_reply_error(); }
	exit;
}
`

// kamailioCfg is a minimal digest registrar: credentials from a db_text
// table, locations in memory. It is the reference pbxd's registrar is
// compared with in the same run.
const kamailioCfg = `#!KAMAILIO
debug=0
log_stderror=yes
fork=yes
children=2
auto_aliases=no
disable_tcp=yes
dns=no
rev_dns=no
maxbuffer=4194304
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
` + kamailioDigestAuth + `modparam("registrar", "max_expires", 3600)
request_route {
	if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
	if (!is_method("REGISTER")) { sl_send_reply("405", "Method Not Allowed"); exit; }
	route(REGISTRAR);
	exit;
}

` + kamailioRegistrarRoute

// startKamailio runs Kamailio on a loopback UDP port with the given
// credentials and returns its address and main PID (ok false when Kamailio
// is not installed); it is stopped when the test ends.
func startKamailio(t *testing.T, creds [][2]string) (string, int, bool) {
	bin, err := exec.LookPath("kamailio")
	if err != nil {
		fmt.Println("BENCH kamailio not installed (Debian package kamailio): no reference run")
		return "", 0, false
	}
	dir := t.TempDir()
	db := writeKamailioDB(t, dir, creds)
	cfg := filepath.Join(dir, "kamailio.cfg")
	os.WriteFile(cfg, []byte(strings.ReplaceAll(kamailioCfg, "DBDIR", db)), 0o644)
	port := freeUDPPort(t)
	k := startKamailioProc(t, bin, "-f", cfg, "-DD", "-E", "-x", "tlsf", "-m", "256", "-M", "16",
		"-l", "udp:127.0.0.1:"+strconv.Itoa(port), "-Y", dir, "-P", filepath.Join(dir, "k.pid"))
	select {
	case <-k.done:
		t.Fatalf("kamailio exited:\n%s", k.logs.String())
	case <-time.After(time.Second):
	}
	return fmt.Sprintf("127.0.0.1:%d", port), k.cmd.Process.Pid, true
}

// kamailioCallsCfg is a transaction-stateful proxy with record-route and
// dialog tracking, as in notes/kamailio-reference.cfg. With WITH_AUTH it
// also does pbxd's signalling work: INVITEs are challenged (407) and
// checked against the db_text subscriber table (proxy_authorize), and the
// callee is found in the location table it registered to; without it,
// every new INVITE goes to UASDST (the notes' reference).
const kamailioCallsCfg = `#!KAMAILIO
debug=0
log_stderror=yes
fork=yes
children=4
auto_aliases=no
disable_tcp=yes
dns=no
rev_dns=no
use_dns_cache=off
maxbuffer=4194304
server_header="Server: bench-kamailio"
user_agent_header="User-Agent: bench-kamailio"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
` + kamailioDigestAuth + `loadmodule "dialog.so"
modparam("usrloc", "hash_size", 12)
modparam("registrar", "max_expires", 7200)
modparam("rr", "enable_full_lr", 0)
modparam("rr", "append_fromtag", 1)
modparam("tm", "fr_timer", 5000)
modparam("tm", "fr_inv_timer", 60000)
modparam("dialog", "dlg_match_mode", 1)
modparam("dialog", "default_timeout", 3600)
modparam("dialog", "hash_size", 8192)
modparam("dialog", "enable_stats", 1)

request_route {
	if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
	if (is_method("REGISTER")) { route(REGISTRAR); exit; }
	if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
	if (has_totag()) { route(WITHINDLG); exit; }
	if (!is_method("ACK")) { t_check_trans(); }
	if (is_method("INVITE")) {
#!ifdef WITH_AUTH
		if (!proxy_authorize("$fd", "subscriber")) { proxy_challenge("$fd", "1"); exit; }
		consume_credentials();
#!endif
		record_route();
		dlg_manage();
	}
	if (is_method("INVITE|OPTIONS|MESSAGE")) {
#!ifdef WITH_AUTH
		if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
#!else
		$du = "UASDST";
#!endif
		if (!t_relay()) { sl_reply_error(); }
		exit;
	}
	sl_send_reply("405", "Method Not Allowed");
	exit;
}

` + kamailioRegistrarRoute + `
route[WITHINDLG] {
	dlg_manage();
	if (loose_route()) { t_relay(); exit; }
	if (uri == myself) { $du = "UASDST"; }
	if (is_method("ACK")) {
		if (t_check_trans()) { t_relay(); exit; }
		forward();
		exit;
	}
	t_relay();
	exit;
}
`

// startKamailioCalls runs Kamailio (tlsf, the fast allocator) as the call
// reference on a free loopback port, with creds in its subscriber table
// (domain 127.0.0.1). It returns its address, its process group (its own:
// the main process and the workers it forks, all started here) and a stop
// function, also run when the test ends.
func startKamailioCalls(t *testing.T, auth bool, uasPort int, creds [][2]string) (string, int, func()) {
	t.Helper()
	bin, err := exec.LookPath("kamailio")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	db := writeKamailioDB(t, dir, creds)
	cfgText := strings.NewReplacer("DBDIR", db, "UASDST", fmt.Sprintf("sip:127.0.0.1:%d", uasPort)).Replace(kamailioCallsCfg)
	cfg := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfg, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freeUDPPort(t)
	args := []string{"-f", cfg, "-DD", "-E", "-x", "tlsf", "-m", "1024", "-M", "16",
		"-l", "udp:127.0.0.1:" + strconv.Itoa(port), "-Y", dir, "-P", filepath.Join(dir, "k.pid")}
	if auth {
		args = append(args, "-A", "WITH_AUTH")
	}
	k := startKamailioProc(t, bin, args...)
	for deadline := time.Now().Add(10 * time.Second); !udpBound(port); time.Sleep(20 * time.Millisecond) {
		select {
		case <-k.done:
			t.Fatalf("kamailio exited:\n%s", k.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kamailio did not bind %d:\n%s", port, k.logs.String())
		}
	}
	time.Sleep(500 * time.Millisecond) // the workers
	fmt.Printf("BENCH calls-kamailio auth=%t args=%q\n", auth, strings.Join(args, " "))
	return fmt.Sprintf("127.0.0.1:%d", port), k.cmd.Process.Pid, k.stop
}

// writeKamailioDB writes the db_text tables of a Kamailio in dir: the
// table versions and a subscriber table with creds (user, password) in
// domain 127.0.0.1. It returns the tables' directory.
func writeKamailioDB(t *testing.T, dir string, creds [][2]string) string {
	t.Helper()
	db := filepath.Join(dir, "db")
	if err := os.MkdirAll(db, 0o755); err != nil {
		t.Fatal(err)
	}
	var sub strings.Builder
	sub.WriteString("id(int,auto) username(string) domain(string) password(string) ha1(string) ha1b(string) \n")
	for i, c := range creds {
		ha1 := md5.Sum([]byte(c[0] + ":127.0.0.1:" + c[1]))
		ha1b := md5.Sum([]byte(c[0] + "@127.0.0.1:127.0.0.1:" + c[1]))
		fmt.Fprintf(&sub, "%d:%s:127.0.0.1:%s:%x:%x\n", i+1, c[0], c[1], ha1, ha1b)
	}
	version := "id(int,auto) table_name(string) table_version(int) \n1:subscriber:7\n2:location:9\n"
	for _, f := range [][2]string{{"subscriber", sub.String()}, {"version", version}} {
		if err := os.WriteFile(filepath.Join(db, f[0]), []byte(f[1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// kamailioProc is a Kamailio started here in a process group of its own,
// so that stopping it reaches the workers it forks and nothing else.
type kamailioProc struct {
	cmd     *exec.Cmd
	logs    *lockedBuffer // its stdout and stderr
	done    chan struct{} // closed once it has exited
	stopped bool
}

// startKamailioProc starts bin with args; it is stopped when the test
// ends, if not before.
func startKamailioProc(t *testing.T, bin string, args ...string) *kamailioProc {
	t.Helper()
	k := &kamailioProc{cmd: exec.Command(bin, args...), logs: &lockedBuffer{}, done: make(chan struct{})}
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	k.cmd.Stdout, k.cmd.Stderr = k.logs, k.logs
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = k.cmd.Wait(); close(k.done) }()
	t.Cleanup(k.stop)
	return k
}

// stop sends SIGTERM to the process group, SIGKILL after 5 s, and waits
// for the main process. Later calls do nothing.
func (k *kamailioProc) stop() {
	if k.stopped {
		return
	}
	k.stopped = true
	_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGTERM) // its own group: only what was started here
	select {
	case <-k.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		<-k.done
	}
}

// groupCPU sums the CPU time of every process in pid's process group.
func groupCPU(pgid int) time.Duration {
	var total time.Duration
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		if pg, _ := strconv.Atoi(f[2]); pg == pgid {
			total += cpuTime(pid)
		}
	}
	return total
}
