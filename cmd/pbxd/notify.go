package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifier speaks sd_notify to systemd when NOTIFY_SOCKET is set and is a
// no-op otherwise.
type notifier struct {
	log *slog.Logger
}

func newNotifier(log *slog.Logger) *notifier { return &notifier{log: log} }

func (n *notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify failed", "err", err)
	}
}

func (n *notifier) status(s string) { n.send("STATUS=" + s) }

// ready tells systemd every listener is up.
func (n *notifier) ready(status string) { n.send(daemon.SdNotifyReady + "\nSTATUS=" + status) }

func (n *notifier) stopping() { n.send(daemon.SdNotifyStopping + "\nSTATUS=stopping") }

// watchdog pings WATCHDOG=1 at half the interval systemd asked for, but only
// while check passes: a wedged store or HTTP server stops the pings, and
// systemd restarts the service.
func (n *notifier) watchdog(ctx context.Context, check func(context.Context) error) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("watchdog settings unreadable", "err", err)
		return
	}
	if interval <= 0 {
		<-ctx.Done()
		return
	}
	every := interval / 2
	n.log.Info("systemd watchdog enabled", "interval", interval.String(), "ping_every", every.String())
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		cctx, cancel := context.WithTimeout(ctx, every)
		err := check(cctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			n.send(daemon.SdNotifyWatchdog)
			if failing {
				n.log.Info("health check passes again")
				n.status("healthy")
				failing = false
			}
		case !failing:
			n.log.Error("health check failed; withholding watchdog pings", "err", err)
			n.status("unhealthy: " + err.Error())
			failing = true
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
