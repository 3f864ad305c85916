package events

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestDeliveryByUser(t *testing.T) {
	fixed := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := NewWith(Options{Now: func() time.Time { return fixed }})
	alice, bob, all := b.Subscribe("alice"), b.Subscribe("bob"), b.Subscribe(AllUsers)
	defer alice.Close()
	defer bob.Close()
	defer all.Close()

	b.Emit("alice", TypeStatus, StatusData{StatusID: "break", Status: 2})
	b.Publish(Event{Type: TypeACDLogin, UserID: "bob", At: fixed.Add(time.Second)})

	e := <-alice.Events()
	if e.Type != TypeStatus || e.UserID != "alice" || !e.At.Equal(fixed) || e.Data.(StatusData).StatusID != "break" {
		t.Fatalf("alice got %+v", e)
	}
	if e := <-bob.Events(); e.Type != TypeACDLogin || !e.At.Equal(fixed.Add(time.Second)) {
		t.Fatalf("bob got %+v", e)
	}
	if a, b := <-all.Events(), <-all.Events(); a.UserID != "alice" || b.UserID != "bob" {
		t.Fatalf("all got %+v then %+v", a, b)
	}
	select {
	case e := <-alice.Events():
		t.Fatalf("alice got bob's event %+v", e)
	default:
	}
	if st := b.Stats(); st.Subscribers != 3 || st.Published != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOverflowDropsTheSlowSubscriber(t *testing.T) {
	b := NewWith(Options{Buffer: 4})
	slow, fast := b.Subscribe("u"), b.Subscribe("u")
	defer fast.Close()
	for i := 0; i < 10; i++ {
		b.Emit("u", TypeStatus, i)
		// fast keeps up.
		if e := <-fast.Events(); e.Data != i {
			t.Fatalf("fast got %+v, want %d", e, i)
		}
	}
	var got []Event
	for e := range slow.Events() { // closed after the notice
		got = append(got, e)
	}
	if len(got) != 5 {
		t.Fatalf("slow got %d events, want 4 and the notice: %+v", len(got), got)
	}
	for i := 0; i < 4; i++ {
		if got[i].Data != i {
			t.Fatalf("event %d is %+v", i, got[i])
		}
	}
	if last := got[4]; last.Type != TypeOverflow || last.Data.(OverflowData).Buffer != 4 {
		t.Fatalf("last event %+v", last)
	}
	if !slow.Overflowed() || fast.Overflowed() {
		t.Fatal("Overflowed")
	}
	slow.Close() // idempotent after the drop
	if st := b.Stats(); st.Subscribers != 1 || st.Overflows != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCloseAndSubscribeAfterClose(t *testing.T) {
	b := New()
	s := b.Subscribe("u")
	b.Emit("u", TypeACDLogout, nil)
	s.Close()
	s.Close()
	// What was buffered can still be drained; then the channel is closed.
	if e, ok := <-s.Events(); !ok || e.Type != TypeACDLogout {
		t.Fatalf("buffered event lost: %+v %v", e, ok)
	}
	if _, ok := <-s.Events(); ok {
		t.Fatal("channel open after Close")
	}
	other := b.Subscribe("u")
	b.Close()
	b.Close()
	if _, ok := <-other.Events(); ok {
		t.Fatal("subscription open after the bus closed")
	}
	late := b.Subscribe("u")
	if _, ok := <-late.Events(); ok {
		t.Fatal("subscription on a closed bus is open")
	}
	b.Emit("u", TypeStatus, nil) // no panic, nothing delivered
	if st := b.Stats(); st.Subscribers != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestConcurrentPublishSubscribe runs publishers, subscribers that come and
// go, readers and a slow reader together under -race; nothing blocks,
// every reader ends and no goroutine is left.
func TestConcurrentPublishSubscribe(t *testing.T) {
	before := runtime.NumGoroutine()
	b := NewWith(Options{Buffer: 8})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for p := 0; p < 4; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				b.Emit(fmt.Sprint("u", i%3), TypeStatus, i)
			}
		}()
	}
	var readers sync.WaitGroup
	for r := 0; r < 8; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for round := 0; round < 50; round++ {
				s := b.Subscribe(fmt.Sprint("u", r%3))
				for n := 0; n < 20; n++ {
					if _, ok := <-s.Events(); !ok {
						break // dropped for falling behind: fine
					}
				}
				s.Close()
			}
		}()
	}
	slow := b.Subscribe(AllUsers)
	readers.Add(1)
	go func() {
		defer readers.Done()
		for range slow.Events() {
			time.Sleep(time.Millisecond)
		}
	}()
	readers.Wait()
	close(stop)
	wg.Wait()
	if !slow.Overflowed() {
		t.Error("the slow subscriber was never dropped")
	}
	b.Close()
	if st := b.Stats(); st.Subscribers != 0 {
		t.Fatalf("%d subscriptions left", st.Subscribers)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines, %d before", n, before)
	}
}

func BenchmarkPublish(b *testing.B) {
	bus := New()
	subs := make([]*Subscription, 10)
	for i := range subs {
		subs[i] = bus.Subscribe(fmt.Sprint("u", i))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		bus.Emit("u3", TypeStatus, nil)
		<-subs[3].Events()
	}
}
