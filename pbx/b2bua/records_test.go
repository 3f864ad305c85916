package b2bua

import (
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"pbxd/store"
)

// TestRecorderKeepsTheNewestSnapshot: snapshots saved from many
// goroutines, more than the queue holds at once, all reach the store, and
// each workitem ends up with its newest state; close writes what is still
// queued, and a save after close is refused without blocking.
func TestRecorderKeepsTheNewestSnapshot(t *testing.T) {
	st, err := store.Open(store.Config{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), GCInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := newRecorder(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	const workers, items, updates = 8, 800, 3 // 19,200 snapshots, over maxQueued
	now := time.Now()
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for i := range items {
				w := &store.Workitem{ID: store.NewID(), Type: store.WorkitemInternalCall, State: store.WorkitemRinging,
					CreatedAt: now, From: strconv.Itoa(g), To: strconv.Itoa(i)}
				for u := range updates {
					w.DurationMs = int64(u)
					if u == updates-1 {
						w.State = store.WorkitemEnded
					}
					r.save(w)
				}
			}
		})
	}
	wg.Wait()
	r.close()
	r.save(&store.Workitem{ID: store.NewID()}) // after close: logged, not saved

	var ended int
	if err := st.View(func(tx *store.Tx) error {
		list, _, err := tx.ListWorkitems(store.WorkitemQuery{Rows: workers * items * 2})
		for _, w := range list {
			if w.State == store.WorkitemEnded && w.DurationMs == updates-1 {
				ended++
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if ended != workers*items {
		t.Errorf("%d workitems in their newest state, want %d", ended, workers*items)
	}
}
