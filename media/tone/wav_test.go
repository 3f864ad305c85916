package tone

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

func TestWAVRoundTrip(t *testing.T) {
	cases := []struct {
		name     string
		rate, ch int
		samples  []int16
	}{
		{"mono 8 kHz tone", 8000, 1, Sine(400, 8000, 8000, 800)},
		{"stereo 48 kHz", 48000, 2, []int16{1, -1, 32767, -32768, 0, 5}},
		{"empty", 16000, 1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteWAV(&buf, c.rate, c.ch, c.samples); err != nil {
				t.Fatal(err)
			}
			if buf.Len() != 44+2*len(c.samples) {
				t.Fatalf("file of %d bytes", buf.Len())
			}
			rate, ch, samples, err := ReadWAV(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if rate != c.rate || ch != c.ch || !slices.Equal(samples, c.samples) {
				t.Fatalf("got %d Hz, %d channels, %d samples", rate, ch, len(samples))
			}
		})
	}
}

// TestWAVHeader checks the canonical 44-byte header field by field.
func TestWAVHeader(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteWAV(&buf, 8000, 1, []int16{0x0102, -2}); err != nil {
		t.Fatal(err)
	}
	want := []byte("RIFF\x28\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00" +
		"\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x04\x00\x00\x00\x02\x01\xfe\xff")
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("header\n% x\nwant\n% x", buf.Bytes(), want)
	}
}

func TestWriteWAVRejects(t *testing.T) {
	cases := []struct {
		name     string
		rate, ch int
		n        int
	}{
		{"zero rate", 0, 1, 0},
		{"zero channels", 8000, 0, 0},
		{"partial frame", 8000, 2, 3},
		{"too many channels", 8000, 1 << 16, 0},
	}
	for _, c := range cases {
		if err := WriteWAV(&bytes.Buffer{}, c.rate, c.ch, make([]int16, c.n)); !errors.Is(err, ErrUnsupportedWAV) {
			t.Errorf("%s: err = %v", c.name, err)
		}
	}
}

// wavFile assembles a RIFF file from chunks, each id followed by its body
// (padded to an even length as RIFF requires).
func wavFile(chunks ...any) []byte {
	var body []byte
	for i := 0; i < len(chunks); i += 2 {
		id, data := chunks[i].(string), chunks[i+1].([]byte)
		body = append(body, id...)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(data)))
		body = append(body, data...)
		if len(data)%2 == 1 {
			body = append(body, 0)
		}
	}
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(4+len(body)))...)
	return append(append(out, "WAVE"...), body...)
}

func fmtChunk(format, channels uint16, rate uint32, bits uint16) []byte {
	align := channels * bits / 8
	b := binary.LittleEndian.AppendUint16(nil, format)
	b = binary.LittleEndian.AppendUint16(b, channels)
	b = binary.LittleEndian.AppendUint32(b, rate)
	b = binary.LittleEndian.AppendUint32(b, rate*uint32(align))
	b = binary.LittleEndian.AppendUint16(b, align)
	return binary.LittleEndian.AppendUint16(b, bits)
}

// extensible returns a WAVE_FORMAT_EXTENSIBLE fmt chunk with sub-format sub.
func extensible(channels uint16, rate uint32, sub uint16) []byte {
	b := fmtChunk(0xFFFE, channels, rate, 16)
	b = binary.LittleEndian.AppendUint16(b, 22) // cbSize
	b = binary.LittleEndian.AppendUint16(b, 16) // valid bits
	b = binary.LittleEndian.AppendUint32(b, 4)  // channel mask
	b = binary.LittleEndian.AppendUint16(b, sub)
	return append(b, "\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"...)
}

func TestReadWAV(t *testing.T) {
	pcm := fmtChunk(1, 1, 8000, 16)
	data := []byte{1, 0, 2, 0, 0xff, 0xff}
	cases := []struct {
		name    string
		file    []byte
		rate    int
		ch      int
		samples []int16
		err     error
	}{
		{"plain", wavFile("fmt ", pcm, "data", data), 8000, 1, []int16{1, 2, -1}, nil},
		{"LIST before fmt, odd-sized chunk, fact after", wavFile("LIST", []byte("INFOISFT\x03\x00\x00\x00ab\x00"), "fmt ", pcm, "junk", []byte{1, 2, 3}, "data", data, "fact", []byte{0, 0, 0, 0}), 8000, 1, []int16{1, 2, -1}, nil},
		{"fmt chunk with cbSize", wavFile("fmt ", append(fmtChunk(1, 2, 16000, 16), 0, 0), "data", []byte{1, 0, 2, 0}), 16000, 2, []int16{1, 2}, nil},
		{"extensible PCM", wavFile("fmt ", extensible(1, 8000, 1), "data", data), 8000, 1, []int16{1, 2, -1}, nil},
		{"empty data", wavFile("fmt ", pcm, "data", []byte{}), 8000, 1, nil, nil},

		{"empty input", nil, 0, 0, nil, ErrNotWAV},
		{"RIFF but not WAVE", []byte("RIFF\x04\x00\x00\x00AVI "), 0, 0, nil, ErrNotWAV},
		{"text", []byte("hello, this is not a wav file"), 0, 0, nil, ErrNotWAV},
		{"8-bit", wavFile("fmt ", fmtChunk(1, 1, 8000, 8), "data", data), 0, 0, nil, ErrUnsupportedWAV},
		{"µ-law format", wavFile("fmt ", fmtChunk(7, 1, 8000, 8), "data", data), 0, 0, nil, ErrUnsupportedWAV},
		{"float", wavFile("fmt ", fmtChunk(3, 1, 8000, 32), "data", data), 0, 0, nil, ErrUnsupportedWAV},
		{"extensible float", wavFile("fmt ", extensible(1, 8000, 3), "data", data), 0, 0, nil, ErrUnsupportedWAV},
		{"no fmt", wavFile("data", data), 0, 0, nil, ErrMalformedWAV},
		{"no data", wavFile("fmt ", pcm), 0, 0, nil, ErrMalformedWAV},
		{"short fmt", wavFile("fmt ", pcm[:14], "data", data), 0, 0, nil, ErrMalformedWAV},
		{"huge fmt", wavFile("fmt ", make([]byte, 2000), "data", data), 0, 0, nil, ErrMalformedWAV},
		{"two fmt", wavFile("fmt ", pcm, "fmt ", pcm, "data", data), 0, 0, nil, ErrMalformedWAV},
		{"zero channels", wavFile("fmt ", fmtChunk(1, 0, 8000, 16), "data", data), 0, 0, nil, ErrMalformedWAV},
		{"zero rate", wavFile("fmt ", fmtChunk(1, 1, 0, 16), "data", data), 0, 0, nil, ErrMalformedWAV},
		{"short extensible", wavFile("fmt ", fmtChunk(0xFFFE, 1, 8000, 16), "data", data), 0, 0, nil, ErrMalformedWAV},
		{"odd data size", wavFile("fmt ", pcm, "data", data[:5]), 0, 0, nil, ErrMalformedWAV},
		{"partial stereo frame", wavFile("fmt ", fmtChunk(1, 2, 8000, 16), "data", data), 0, 0, nil, ErrMalformedWAV},
		{"truncated data", wavFile("fmt ", pcm, "data", data)[:46], 0, 0, nil, ErrMalformedWAV},
		{"truncated chunk header", append(wavFile("fmt ", pcm), "dat"...), 0, 0, nil, ErrMalformedWAV},
		{"truncated other chunk", wavFile("fmt ", pcm, "LIST", make([]byte, 100))[:60], 0, 0, nil, ErrMalformedWAV},
		{"data declares 4 GiB", append(wavFile("fmt ", pcm), "data\xfe\xff\xff\xff\x01\x00"...), 0, 0, nil, ErrMalformedWAV},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rate, ch, samples, err := ReadWAV(bytes.NewReader(c.file))
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if rate != c.rate || ch != c.ch || !slices.Equal(samples, c.samples) {
				t.Fatalf("got %d Hz, %d channels, %v", rate, ch, samples)
			}
		})
	}
}

// FuzzReadWAV: whatever the input, ReadWAV returns an error or a file that
// WriteWAV writes back and ReadWAV reads again to the same samples. The
// seed corpus is in testdata/fuzz/FuzzReadWAV.
func FuzzReadWAV(f *testing.F) {
	f.Add(wavFile("fmt ", fmtChunk(1, 1, 8000, 16), "data", []byte{1, 0, 2, 0}))
	f.Fuzz(func(t *testing.T, file []byte) {
		rate, ch, samples, err := ReadWAV(bytes.NewReader(file))
		if err != nil {
			if !errors.Is(err, ErrNotWAV) && !errors.Is(err, ErrUnsupportedWAV) && !errors.Is(err, ErrMalformedWAV) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if len(samples)*2 > len(file) {
			t.Fatalf("%d samples from %d bytes", len(samples), len(file))
		}
		var buf bytes.Buffer
		if err := WriteWAV(&buf, rate, ch, samples); err != nil {
			// Only a rate WriteWAV cannot express may fail.
			if !errors.Is(err, ErrUnsupportedWAV) {
				t.Fatal(err)
			}
			return
		}
		rate2, ch2, samples2, err := ReadWAV(&buf)
		if err != nil || rate2 != rate || ch2 != ch || !slices.Equal(samples2, samples) {
			t.Fatalf("rewrite: %v, %d/%d Hz, %d/%d channels", err, rate2, rate, ch2, ch)
		}
	})
}
