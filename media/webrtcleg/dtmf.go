package webrtcleg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"pbxd/media"
	"pbxd/media/dtmf"
)

// ErrNoEvents means the browser did not negotiate telephone-event.
var ErrNoEvents = errors.New("webrtcleg: browser takes no telephone-events")

// DTMFVolume is the power level SendDTMF reports: -10 dBm0.
const DTMFVolume = 10

// SendDTMF plays digit (0-9, *, #, A-D) to the browser as an RFC 4733
// event lasting duration (100 ms when zero or less): one packet every
// 20 ms, all with the event's start timestamp, the end packet three
// times. Audio sent meanwhile is dropped, and audio after the digit
// continues after the event's end. It blocks for about duration and
// returns early with ctx's error or media.ErrClosed. Digits sent from
// several goroutines go one after the other.
func (l *Leg) SendDTMF(ctx context.Context, digit rune, duration time.Duration) error {
	if l.closed.Load() {
		return media.ErrClosed
	}
	n := l.neg.Load()
	if n == nil {
		return media.ErrNoRemote
	}
	if n.eventPT == 0 {
		return ErrNoEvents
	}
	if duration <= 0 {
		duration = 100 * time.Millisecond
	}
	units := min(duration.Seconds()*8000, 65535)
	pkts, err := dtmf.Generate(digit, uint16(max(units, 1)), media.FrameSamples, DTMFVolume)
	if err != nil {
		return fmt.Errorf("webrtc leg %s: %w", l.id, err)
	}
	updates := len(pkts) - dtmf.EndRepeats

	l.dtmfMu.Lock()
	defer l.dtmfMu.Unlock()
	l.dtmfSrc++
	src := l.dtmfSrc
	l.mu.Lock()
	l.dtmfActive = true
	l.mu.Unlock()
	var start uint32
	started := false
	defer func() {
		l.mu.Lock()
		l.dtmfActive = false
		if started {
			l.tsFloor, l.floorSet = start+uint32(units), true
		}
		l.mu.Unlock()
	}()

	tick := time.NewTicker(media.FrameDuration)
	defer tick.Stop()
	f := media.Frame{Kind: media.KindEvent, Source: src}
	for i, p := range pkts {
		if i > 0 && i <= updates {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			case <-l.done:
				return media.ErrClosed
			}
		}
		f.Seq, f.Marker, f.Payload = uint16(i), p.Marker, p.Payload
		l.mu.Lock()
		err := l.write(&f, n.eventPT, time.Now())
		if err == nil && !started {
			start, started = l.lastTS, true
		}
		l.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}
