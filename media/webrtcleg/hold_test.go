package webrtcleg

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"pbxd/media"
)

// reoffer makes the browser's next offer with its audio direction set to
// dir, as JsSIP's hold() and unhold() do with a re-INVITE.
func (b *browser) reoffer(dir string) []byte {
	b.t.Helper()
	o, err := b.pc.CreateOffer(nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return setDirection(b.setLocal(o), dir)
}

// directionOf is the direction attribute of sdp's audio section.
func directionOf(t *testing.T, sdp []byte) string {
	t.Helper()
	ra, _, err := parseRemote(sdp)
	if err != nil {
		t.Fatal(err)
	}
	return ra.dir
}

// heard counts the PCMU packets each side gets while both send for d.
func heard(b *browser, l *Leg, rx *sink, d time.Duration) (browserGot, legGot int) {
	n, m := len(b.received()), len(rx.get(media.KindAudio))
	snd := sendTone(l, 1000, media.PCMU, 5)
	b.sendTone(400, 0, int(d/media.FrameDuration))
	time.Sleep(60 * time.Millisecond)
	snd.Stop()
	for _, p := range b.received()[n:] {
		if p.PayloadType == 0 {
			browserGot++
		}
	}
	return browserGot, len(rx.get(media.KindAudio)) - m
}

// TestHoldResume: the browser holds the call with a re-offer (sendonly,
// or inactive when both sides hold: what JsSIP and SIP.js send) and
// resumes it; the answers say the
// RFC 3264 direction, nothing is sent to a holding browser, no media
// timeout runs while it sends nothing, and after resuming audio flows both
// ways again.
func TestHoldResume(t *testing.T) {
	checkGoroutines(t)
	e := newEngine(t, Config{})
	for _, tc := range []struct {
		hold, answer string
		// sends: the browser said it sends (a media timeout runs);
		// receives: it takes media from pbxd.
		sends, receives bool
	}{
		{dirSendonly, dirRecvonly, true, false},
		{dirInactive, dirInactive, false, false},
	} {
		t.Run(tc.hold, func(t *testing.T) {
			l, err := e.Open("hold-" + tc.hold)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			rx := &sink{}
			l.SetReceiver(rx)
			b := newBrowser(t, nil)
			connect(t, l, b)

			answer, err := l.Answer(context.Background(), b.reoffer(tc.hold))
			if err != nil {
				t.Fatal(err)
			}
			if d := directionOf(t, answer); d != tc.answer {
				t.Errorf("answer to %s: %s, want %s", tc.hold, d, tc.answer)
			}
			if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
				t.Fatal(err)
			}
			if _, timing := l.idle(time.Now()); timing != tc.sends {
				t.Errorf("media timeout running: %v, want %v", timing, tc.sends)
			}
			// (The test's browser keeps sending whatever its SDP says; the
			// leg takes what arrives.)
			if browserGot, _ := heard(b, l, rx, 400*time.Millisecond); (browserGot > 0) != tc.receives {
				t.Errorf("on hold: browser got %d packets", browserGot)
			}

			answer, err = l.Answer(context.Background(), b.reoffer(dirSendrecv))
			if err != nil {
				t.Fatal(err)
			}
			if d := directionOf(t, answer); d != dirSendrecv {
				t.Errorf("answer to resume: %s", d)
			}
			b.setAnswer(answer)
			if browserGot, legGot := heard(b, l, rx, 400*time.Millisecond); browserGot < 15 || legGot < 15 {
				t.Errorf("after resume: browser got %d, leg got %d", browserGot, legGot)
			}
		})
	}
}

// TestListenOnlyBrowser: a browser that offers recvonly (a supervisor's
// listen-only page) hears the leg, and no media timeout waits for it.
func TestListenOnlyBrowser(t *testing.T) {
	checkGoroutines(t)
	e := newEngine(t, Config{MediaTimeout: 300 * time.Millisecond})
	l, err := e.Open("listen")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.OnTimeout(func() { t.Error("media timeout for a listen-only browser") })
	b := newBrowser(t, nil)
	offer := setDirection(b.offer(), dirRecvonly)
	answer, err := l.Answer(context.Background(), offer)
	if err != nil {
		t.Fatal(err)
	}
	if d := directionOf(t, answer); d != dirSendonly {
		t.Errorf("answer %s", d)
	}
	if !bytes.Contains(answer, []byte("a=ssrc:")) {
		t.Errorf("answer sends no stream:\n%s", answer)
	}
	b.setAnswer(answer)
	b.waitConnected()
	snd := sendTone(l, 1300, media.PCMU, 1)
	got := b.waitPackets(30, func(p *rtp.Packet) bool { return p.PayloadType == 0 })
	snd.Stop()
	assertTone(t, "listener", decode("PCMU", payloadsOf(got[5:])...), 1300)
	time.Sleep(500 * time.Millisecond)
}

// TestReofferKeepsCodec: a re-offer listing the other G.711 codec first is
// answered with the codec the leg already sends.
func TestReofferKeepsCodec(t *testing.T) {
	checkGoroutines(t)
	e := newEngine(t, Config{})
	l, err := e.Open("reoffer")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b := newBrowser(t, nil)
	connect(t, l, b)
	o, err := b.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	// pion's re-offer lists what was negotiated (0 126): put PCMA first.
	sdp := b.setLocal(o)
	re := bytes.Replace(sdp, []byte("SAVPF 0 126\r\n"), []byte("SAVPF 8 0 126\r\n"), 1)
	re = bytes.Replace(re, []byte("a=rtpmap:0 "), []byte("a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 "), 1)
	if bytes.Equal(re, sdp) {
		t.Fatalf("could not reorder the offer:\n%s", sdp)
	}
	answer, err := l.Answer(context.Background(), re)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(answer, []byte("SAVPF 0 126\r\n")) || l.Codec().Name != "PCMU" {
		t.Errorf("re-offer answered with %v:\n%s", l.Codec(), answer)
	}
}
