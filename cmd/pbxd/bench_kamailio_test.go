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
loadmodule "db_text.so"
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
modparam("registrar", "max_expires", 3600)
request_route {
	if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
	if (!is_method("REGISTER")) { sl_send_reply("405", "Method Not Allowed"); exit; }
	if (!auth_check("$fd", "subscriber", "1")) { auth_challenge("$fd", "1"); exit; }
	consume_credentials();
	if (!save("location")) { sl_reply_error(); }
	exit;
}
`

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
	db := filepath.Join(dir, "db")
	os.MkdirAll(db, 0o755)
	var sub strings.Builder
	sub.WriteString("id(int,auto) username(string) domain(string) password(string) ha1(string) ha1b(string) \n")
	for i, c := range creds {
		ha1 := md5.Sum([]byte(c[0] + ":127.0.0.1:" + c[1]))
		ha1b := md5.Sum([]byte(c[0] + "@127.0.0.1:127.0.0.1:" + c[1]))
		fmt.Fprintf(&sub, "%d:%s:127.0.0.1:%s:%x:%x\n", i+1, c[0], c[1], ha1, ha1b)
	}
	os.WriteFile(filepath.Join(db, "subscriber"), []byte(sub.String()), 0o644)
	os.WriteFile(filepath.Join(db, "version"), []byte("id(int,auto) table_name(string) table_version(int) \n1:subscriber:7\n2:location:9\n"), 0o644)
	cfg := filepath.Join(dir, "kamailio.cfg")
	os.WriteFile(cfg, []byte(strings.ReplaceAll(kamailioCfg, "DBDIR", db)), 0o644)
	port := freeUDPPort(t)
	cmd := exec.Command(bin, "-f", cfg, "-DD", "-E", "-x", "tlsf", "-m", "256", "-M", "16",
		"-l", "udp:127.0.0.1:"+strconv.Itoa(port), "-Y", dir, "-P", filepath.Join(dir, "k.pid"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // its own group: only the processes started here
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	select {
	case <-done:
		t.Fatalf("kamailio exited:\n%s", logs.String())
	case <-time.After(time.Second):
	}
	return fmt.Sprintf("127.0.0.1:%d", port), cmd.Process.Pid, true
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
