package webrtcleg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"pbxd/media"
	"pbxd/media/dtmf"
)

// TestAnswerBrowserOffer is the browser calling pbxd: the browser offers
// opus, PCMU, PCMA and telephone-event, the leg answers G.711; a 400 Hz
// tone reaches the leg's receiver, a 1000 Hz tone sent on the leg reaches
// the browser, and DTMF goes both ways.
func TestAnswerBrowserOffer(t *testing.T) {
	checkGoroutines(t)
	e := newEngine(t, Config{})
	l, err := e.Open("browser-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	rx := &sink{}
	l.SetReceiver(rx)
	b := newBrowser(t, nil)
	_, answer := connect(t, l, b)

	for _, want := range []string{"a=rtcp-mux", "a=setup:active", "a=group:BUNDLE", "m=audio 9 UDP/TLS/RTP/SAVPF 0 126\r\n",
		fmt.Sprintf("127.0.0.1 %d typ host", e.Port())} {
		if !bytes.Contains(answer, []byte(want)) {
			t.Errorf("answer lacks %q:\n%s", want, answer)
		}
	}
	if bytes.Contains(answer, []byte("opus")) {
		t.Errorf("answer offers opus:\n%s", answer)
	}
	if c := l.Codec(); c.Name != "PCMU" || c.PayloadType != 0 || l.EventPayloadType() != 126 {
		t.Fatalf("negotiated %+v, event PT %d; want PCMU/0, 126", c, l.EventPayloadType())
	}

	// Browser → leg: 1 s of 400 Hz.
	b.sendTone(400, 0, 50)
	frames := rx.wait(t, media.KindAudio, 45)
	var payloads [][]byte
	for _, f := range frames {
		if f.Codec.Name != "PCMU" || len(f.Payload) != 160 {
			t.Fatalf("frame %+v", f)
		}
		payloads = append(payloads, f.Payload)
	}
	assertTone(t, "leg from browser", decode("PCMU", payloads...), 400)

	// Leg → browser: 1000 Hz through Send.
	snd := sendTone(l, 1000, media.PCMU, 42)
	got := b.waitPackets(45, func(p *rtp.Packet) bool { return p.PayloadType == 0 })
	snd.Stop()
	payloads = payloads[:0]
	for _, p := range got[5:] {
		payloads = append(payloads, p.Payload)
	}
	assertTone(t, "browser from leg", decode("PCMU", payloads...), 1000)

	// Browser → leg: digit 5 on telephone-event 126.
	b.sendDigit('5', 126)
	ev := rx.wait(t, media.KindEvent, 4)
	e0, err := dtmf.Unmarshal(ev[0].Payload)
	if err != nil || e0.Code != 5 || !ev[0].Marker {
		t.Errorf("first event frame %+v (%+v, %v)", ev[0], e0, err)
	}

	// Leg → browser: SendDTMF('7').
	before := len(b.received())
	if err := l.SendDTMF(context.Background(), '7', 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	evs := b.waitPackets(before+7, nil)[before:]
	checkDigit(t, evs, 126, 7)

	// Audio after the digit continues the stream after the event's end.
	snd = sendTone(l, 1000, media.PCMU, 42)
	after := b.waitPackets(before+8, nil)[before+7]
	snd.Stop()
	last := evs[len(evs)-1]
	if after.PayloadType != 0 || after.SequenceNumber != last.SequenceNumber+1 || int32(after.Timestamp-(last.Timestamp+800)) < 0 || !after.Marker {
		t.Errorf("audio after the digit: %+v; event ended at ts %d+800, seq %d", after.Header, last.Timestamp, last.SequenceNumber)
	}

	st := l.Stats()
	if st.PacketsReceived < 50 || st.EventsReceived < 4 || st.PacketsSent < 50 || st.Codec != "PCMU" || st.PacketsLost != 0 || st.JitterMs > 20 {
		t.Errorf("stats %+v", st)
	}
	t.Logf("stats %+v", st)
}

// checkDigit checks that pkts are one RFC 4733 event for code on pt: a
// marker on the first, one timestamp, the End bit on the last three.
func checkDigit(t testing.TB, pkts []*rtp.Packet, pt uint8, code uint8) {
	t.Helper()
	var evs []*rtp.Packet
	for _, p := range pkts {
		if p.PayloadType == pt {
			evs = append(evs, p)
		}
	}
	if len(evs) != 7 {
		t.Fatalf("%d event packets, want 7 (4 updates, 3 ends)", len(evs))
	}
	for i, p := range evs {
		ev, err := dtmf.Unmarshal(p.Payload)
		if err != nil || ev.Code != code || p.Timestamp != evs[0].Timestamp || p.Marker != (i == 0) || ev.End != (i >= 4) {
			t.Errorf("event packet %d: %+v %+v %v", i, p.Header, ev, err)
		}
		if i > 0 && p.SequenceNumber != evs[i-1].SequenceNumber+1 {
			t.Errorf("event packet %d: seq %d after %d", i, p.SequenceNumber, evs[i-1].SequenceNumber)
		}
	}
}

// TestAnswerPicksG711 checks the answer's one codec against offers in
// different orders, without connecting.
func TestAnswerPicksG711(t *testing.T) {
	checkGoroutines(t)
	e := newEngine(t, Config{})
	byName := map[string]int{}
	for i, c := range browserCodecs {
		byName[c.MimeType+"/"+fmt.Sprint(c.ClockRate)] = i
	}
	pick := func(names ...string) (cs []webrtc.RTPCodecParameters) {
		for _, n := range names {
			cs = append(cs, browserCodecs[byName[n]])
		}
		return cs
	}
	const opus, pcmu, pcma, te8, te48 = "audio/opus/48000", "audio/PCMU/8000", "audio/PCMA/8000", "audio/telephone-event/8000", "audio/telephone-event/48000"
	for _, tc := range []struct {
		name    string
		offer   []webrtc.RTPCodecParameters
		codec   string
		eventPT uint8
		mline   string
		err     error
	}{
		{"chromium", pick(opus, pcmu, pcma, te48, te8), "PCMU", 126, "SAVPF 0 126\r\n", nil},
		{"pcma first", pick(opus, pcma, pcmu, te8), "PCMA", 126, "SAVPF 8 126\r\n", nil},
		{"no events", pick(pcmu), "PCMU", 0, "SAVPF 0\r\n", nil},
		{"only 48 kHz events", pick(pcma, te48), "PCMA", 0, "SAVPF 8\r\n", nil},
		{"opus only", pick(opus, te48), "", 0, "", ErrNoCodec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := e.Open(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			b := newBrowser(t, tc.offer)
			answer, err := l.Answer(context.Background(), b.offer())
			if !errors.Is(err, tc.err) {
				t.Fatalf("Answer: %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if !bytes.Contains(answer, []byte(tc.mline)) {
				t.Errorf("answer lacks %q:\n%s", tc.mline, answer)
			}
			if l.Codec().Name != tc.codec || l.EventPayloadType() != tc.eventPT {
				t.Errorf("negotiated %v/%d, want %s/%d", l.Codec(), l.EventPayloadType(), tc.codec, tc.eventPT)
			}
		})
	}
}

// TestOfferToBrowser is pbxd calling a browser: the leg offers, the
// browser answers, media and DTMF flow both ways.
func TestOfferToBrowser(t *testing.T) {
	checkGoroutines(t)
	e := newEngine(t, Config{})
	l, err := e.Open("to-browser")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	rx := &sink{}
	l.SetReceiver(rx)
	if err := l.SetAnswer([]byte("v=0")); !errors.Is(err, ErrState) {
		t.Errorf("SetAnswer before Offer: %v", err)
	}
	offer, err := l.Offer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"m=audio 9 UDP/TLS/RTP/SAVPF 0 8 101\r\n", "a=rtpmap:101 telephone-event/8000", "a=setup:actpass", "a=rtcp-mux",
		fmt.Sprintf("127.0.0.1 %d typ host", e.Port())} {
		if !bytes.Contains(offer, []byte(want)) {
			t.Errorf("offer lacks %q:\n%s", want, offer)
		}
	}
	if _, err := l.Answer(context.Background(), offer); !errors.Is(err, ErrState) {
		t.Errorf("Answer while our offer is pending: %v", err)
	}
	b := newBrowser(t, nil)
	answer := b.answer(offer)
	if err := l.SetAnswer(answer); err != nil {
		t.Fatal(err)
	}
	b.waitConnected()
	if c := l.Codec(); c.Name != "PCMU" || l.EventPayloadType() != 101 {
		t.Fatalf("negotiated %+v / %d", c, l.EventPayloadType())
	}

	snd := sendTone(l, 1000, media.PCMU, 9)
	b.sendTone(400, 0, 50)
	got := b.waitPackets(45, func(p *rtp.Packet) bool { return p.PayloadType == 0 })
	snd.Stop()
	var payloads [][]byte
	for _, p := range got[5:] {
		payloads = append(payloads, p.Payload)
	}
	assertTone(t, "browser from leg", decode("PCMU", payloads...), 1000)
	payloads = payloads[:0]
	for _, f := range rx.wait(t, media.KindAudio, 45) {
		payloads = append(payloads, f.Payload)
	}
	assertTone(t, "leg from browser", decode("PCMU", payloads...), 400)

	b.sendDigit('#', 101)
	ev := rx.wait(t, media.KindEvent, 4)
	if e0, _ := dtmf.Unmarshal(ev[0].Payload); e0.Code != 11 {
		t.Errorf("event %+v", e0)
	}
	before := len(b.received())
	if err := l.SendDTMF(context.Background(), '1', 0); err != nil {
		t.Fatal(err)
	}
	checkDigit(t, b.waitPackets(before+7, nil)[before:], 101, 1)
}
