package b2bua

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"pbxd/store"
)

// recorder writes call records off the signalling path: calls hand it
// snapshots and go on, and it commits them in batches. Commits reach
// Badger's memory-mapped log at once, so they survive pbxd being killed;
// the flush to disk (against power loss) happens at most once a second
// while records keep coming, so a burst of calls costs one fsync instead
// of several per call, and call setup never waits for the disk.
//
// A snapshot does not wake the writer directly: a goroutine woken by a
// channel send is scheduled next on the sender's processor, so it would
// run its Badger commit before the INVITE or 200 the sender is about to
// pass on. A timer wakes it instead, batchDelay after the first queued
// snapshot (at once when a full batch is waiting).
type recorder struct {
	st   *store.Store
	log  *slog.Logger
	wake *time.Timer
	kick chan struct{} // a full batch is waiting
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	queue   []*store.Workitem
	armed   bool       // wake is set
	room    *sync.Cond // signalled when the queue is taken
	closing bool
}

// batchDelay is how long a snapshot waits for others to join its batch.
const batchDelay = 2 * time.Millisecond

// maxQueued snapshots make save wait for the writer: back-pressure
// rather than a lost record or unbounded memory.
const maxQueued = 4096

func newRecorder(st *store.Store, log *slog.Logger) *recorder {
	r := &recorder{st: st, log: log, wake: time.NewTimer(time.Hour), kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	r.wake.Stop()
	r.room = sync.NewCond(&r.mu)
	go r.run()
	return r
}

// save queues a copy of w. It blocks only when thousands of records are
// waiting for the disk.
func (r *recorder) save(w *store.Workitem) {
	c := *w
	c.Users = slices.Clone(w.Users)
	c.Media = slices.Clone(w.Media)
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.queue) >= maxQueued && !r.closing {
		r.room.Wait()
	}
	if r.closing {
		r.log.Warn("b2bua: call record after shutdown not saved", "workitem", w.ID)
		return
	}
	r.queue = append(r.queue, &c)
	switch {
	case len(r.queue) >= maxBatch:
		select {
		case r.kick <- struct{}{}:
		default:
		}
	case !r.armed:
		r.armed = true
		r.wake.Reset(batchDelay)
	}
}

const maxBatch = 256

// syncEvery is how long a committed record may wait for its fsync.
const syncEvery = time.Second

func (r *recorder) run() {
	defer close(r.done)
	tick := time.NewTicker(syncEvery)
	defer tick.Stop()
	dirty := false
	for {
		stopping := false
		select {
		case <-r.wake.C:
		case <-r.kick:
		case <-r.stop:
			stopping = true
		case <-tick.C:
			if dirty {
				r.sync()
				dirty = false
			}
			continue
		}
		r.mu.Lock()
		queue := r.queue
		r.queue, r.armed = nil, false
		r.room.Broadcast()
		r.mu.Unlock()
		for len(queue) > 0 {
			n := min(len(queue), maxBatch)
			r.write(queue[:n])
			queue = queue[n:]
			dirty = true
		}
		if stopping {
			if dirty {
				r.sync()
			}
			return
		}
	}
}

func (r *recorder) sync() {
	if err := r.st.Sync(); err != nil {
		r.log.Error("b2bua: flushing call records", "err", err)
	}
}

func (r *recorder) write(batch []*store.Workitem) {
	// Only the newest snapshot of each workitem matters.
	latest := make(map[string]*store.Workitem, len(batch))
	order := make([]string, 0, len(batch))
	for _, w := range batch {
		if _, seen := latest[w.ID]; !seen {
			order = append(order, w.ID)
		}
		latest[w.ID] = w
	}
	err := r.st.UpdateSoft(func(tx *store.Tx) error {
		for _, id := range order {
			if err := tx.PutWorkitem(latest[id]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		r.log.Error("b2bua: writing call records", "records", len(order), "err", err)
	}
}

// close writes what is queued and stops.
func (r *recorder) close() {
	r.mu.Lock()
	first := !r.closing
	r.closing = true
	r.room.Broadcast()
	r.mu.Unlock()
	if first {
		r.wake.Stop()
		close(r.stop)
	}
	<-r.done
}
