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
type recorder struct {
	st   *store.Store
	log  *slog.Logger
	ch   chan *store.Workitem
	done chan struct{}
	// mu keeps save from sending on the channel close has closed.
	mu     sync.RWMutex
	closed bool
}

func newRecorder(st *store.Store, log *slog.Logger) *recorder {
	r := &recorder{st: st, log: log, ch: make(chan *store.Workitem, 4096), done: make(chan struct{})}
	go r.run()
	return r
}

// save queues a copy of w. It blocks only when thousands of records are
// waiting for the disk: back-pressure rather than a lost record.
func (r *recorder) save(w *store.Workitem) {
	c := *w
	c.Users = slices.Clone(w.Users)
	c.Media = slices.Clone(w.Media)
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		r.log.Warn("b2bua: call record after shutdown not saved", "workitem", w.ID)
		return
	}
	r.ch <- &c
}

const maxBatch = 256

// syncEvery is how long a committed record may wait for its fsync.
const syncEvery = time.Second

func (r *recorder) run() {
	defer close(r.done)
	tick := time.NewTicker(syncEvery)
	defer tick.Stop()
	dirty := false
	batch := make([]*store.Workitem, 0, maxBatch)
	for {
		var w *store.Workitem
		var ok bool
		select {
		case w, ok = <-r.ch:
		case <-tick.C:
			if dirty {
				r.sync()
				dirty = false
			}
			continue
		}
		if !ok {
			if dirty {
				r.sync()
			}
			return
		}
		batch = append(batch[:0], w)
	drain:
		for len(batch) < maxBatch {
			select {
			case w, ok := <-r.ch:
				if !ok {
					break drain
				}
				batch = append(batch, w)
			default:
				break drain
			}
		}
		r.write(batch)
		clear(batch)
		dirty = true
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
	if !r.closed {
		r.closed = true
		close(r.ch)
	}
	r.mu.Unlock()
	<-r.done
}
