package systemd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func needAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" || os.Getuid() == 0 {
			t.Fatal("systemd-analyze is missing; `make test` installs it (Debian package systemd)")
		}
		t.Skip("systemd-analyze not installed")
	}
	return p
}

// unitCopy writes the unit with ExecStart pointed at bin, which must exist
// for verify to pass; edit may alter the text.
func unitCopy(t *testing.T, bin string, edit func(string) string) string {
	t.Helper()
	data, err := os.ReadFile("pbxd.service")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "ExecStart=/usr/bin/pbxd", "ExecStart="+bin)
	if edit != nil {
		text = edit(text)
	}
	path := filepath.Join(t.TempDir(), "pbxd.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// verifyUnit fails on a non-zero exit and on any output at all, because
// systemd-analyze verify exits 0 on unknown keys and bad values.
func verifyUnit(analyze, unit string) (string, bool) {
	var out bytes.Buffer
	cmd := exec.Command(analyze, "verify", "--man=no", unit)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err == nil && strings.TrimSpace(out.String()) == ""
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

func buildPBXD(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pbxd")
	cmd := exec.Command("go", "build", "-o", bin, "pbxd/cmd/pbxd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestUnitVerifies(t *testing.T) {
	analyze := needAnalyze(t)
	bin := buildPBXD(t)
	out, ok := verifyUnit(analyze, unitCopy(t, bin, nil))
	if !ok {
		t.Fatalf("systemd-analyze verify complained:\n%s", out)
	}
	// The checker must catch what verify only warns about.
	for _, bad := range []func(string) string{
		func(s string) string { return strings.Replace(s, "NoNewPrivileges=", "NoNewPrivilges=", 1) },
		func(s string) string { return strings.Replace(s, "Type=notify", "Type=notfy", 1) },
	} {
		if out, ok := verifyUnit(analyze, unitCopy(t, bin, bad)); ok {
			t.Fatalf("a broken unit passed the check: %q", out)
		}
	}
}

func TestUnitSecurityScore(t *testing.T) {
	analyze := needAnalyze(t)
	unit := unitCopy(t, "/bin/true", nil)
	cmd := exec.Command(analyze, "security", "--offline=true", "--threshold=20", "--no-pager", unit)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("security check failed (threshold 2.0): %v\n%s", err, out)
	}
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("exposure level %.1f", score)
	if score > 2.0 {
		t.Fatalf("exposure level %.1f is above 2.0", score)
	}
}

func TestUnitEssentials(t *testing.T) {
	data, err := os.ReadFile("pbxd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "Restart=on-failure", "StateDirectory=pbxd", "User=pbx",
		"CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "ProtectSystem=strict"} {
		if !strings.Contains(string(data), "\n"+want) {
			t.Errorf("unit lacks %s", want)
		}
	}
}
