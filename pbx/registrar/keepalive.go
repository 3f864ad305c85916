package registrar

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"pbxd/store"
)

// KeepAliveConfig tunes the keep-alive pinger.
type KeepAliveConfig struct {
	Store *store.Store
	// Client sends the OPTIONS; it must send from the SIP listening port,
	// the one the phones registered to, so their NAT mapping is refreshed.
	Client *sipgo.Client
	// Host is pbxd's advertised address, for the From header.
	Host string
	// Interval between rounds (30 s when zero); Timeout per ping (5 s).
	Interval, Timeout time.Duration
	// DropAfter consecutive unanswered pings removes the contact (3).
	DropAfter int
	Logger    *slog.Logger
}

// KeepAlive pings every UDP contact with OPTIONS (RFC 3261 §11): it keeps
// the NAT pinholes of phones behind routers open so calls reach them, and
// removes contacts that stopped answering, so calls do not ring phones
// that are gone.
type KeepAlive struct {
	cfg    KeepAliveConfig
	log    *slog.Logger
	mu     sync.Mutex
	misses map[string]int // device + contact → consecutive misses
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// StartKeepAlive begins pinging.
func StartKeepAlive(cfg KeepAliveConfig) *KeepAlive {
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = min(5*time.Second, cfg.Interval)
	}
	if cfg.DropAfter <= 0 {
		cfg.DropAfter = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	k := &KeepAlive{cfg: cfg, log: cfg.Logger, misses: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go k.run()
	return k
}

// Close stops the pinger and waits for pings in flight.
func (k *KeepAlive) Close() {
	k.once.Do(func() { close(k.stop) })
	<-k.done
}

func (k *KeepAlive) run() {
	defer close(k.done)
	t := time.NewTicker(k.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
			k.round()
		}
	}
}

// maxPings bounds the pings in flight in one round.
const maxPings = 32

func (k *KeepAlive) round() {
	var all []*store.Binding
	if err := k.cfg.Store.View(func(tx *store.Tx) (err error) { all, err = tx.AllBindings(); return err }); err != nil {
		k.log.Error("keep-alive: reading bindings", "err", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-k.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	sem := make(chan struct{}, maxPings)
	var wg sync.WaitGroup
	for _, b := range all {
		if b.Transport != "UDP" {
			continue // stream transports keep their own connection alive
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			k.ping(ctx, b)
		})
	}
	wg.Wait()
}

func (k *KeepAlive) ping(ctx context.Context, b *store.Binding) {
	var target sip.Uri
	if err := sip.ParseUri(b.Contact, &target); err != nil {
		return
	}
	req := sip.NewRequest(sip.OPTIONS, target)
	req.SetDestination(b.Source)
	req.SetTransport("UDP")
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "pbxd", Host: k.cfg.Host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(&from)
	req.AppendHeader(&sip.ToHeader{Address: target})
	pctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	_, err := k.cfg.Client.Do(pctx, req)
	key := b.DeviceUsername + "\x00" + b.Contact
	k.mu.Lock()
	if err == nil {
		delete(k.misses, key)
		k.mu.Unlock()
		return
	}
	if ctx.Err() != nil {
		k.mu.Unlock()
		return // shutting down
	}
	k.misses[key]++
	n := k.misses[key]
	if n >= k.cfg.DropAfter {
		delete(k.misses, key)
	}
	k.mu.Unlock()
	if n < k.cfg.DropAfter {
		k.log.Debug("keep-alive: no answer", "device", b.DeviceUsername, "source", b.Source, "misses", n)
		return
	}
	err = k.cfg.Store.UpdateSoft(func(tx *store.Tx) error {
		bs, err := tx.Bindings(b.DeviceUsername)
		if err != nil {
			return err
		}
		kept := bs[:0]
		for _, x := range bs {
			if x.Contact != b.Contact || x.Source != b.Source {
				kept = append(kept, x)
			}
		}
		return tx.SetBindings(b.DeviceUsername, kept)
	})
	if err != nil {
		k.log.Error("keep-alive: dropping contact", "err", err)
		return
	}
	k.log.Info("keep-alive: contact stopped answering; registration removed", "device", b.DeviceUsername, "source", b.Source)
}
