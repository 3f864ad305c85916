// Package systemd holds pbxd's systemd unit and sysusers files; its tests
// check them with systemd-analyze. The sd_notify side lives in cmd/pbxd.
package systemd
