package pbx

import (
	"context"
	"log/slog"
)

// stackHandler is the log handler of the SIP stack (sipgo). What the
// stack reports is mostly about what the network sent — messages that do
// not parse, retransmissions, closed connections — so it is logged at
// debug level, and attribute values are cut short: the stack likes to log
// whole messages, and an attacker can make those 64 KiB each.
type stackHandler struct{ inner slog.Handler }

// maxStackAttr bounds one attribute value of a stack log line.
const maxStackAttr = 200

func newStackLogger(l *slog.Logger) *slog.Logger {
	return slog.New(stackHandler{inner: l.Handler()}).With("component", "sip-stack")
}

func (h stackHandler) Enabled(ctx context.Context, _ slog.Level) bool {
	return h.inner.Enabled(ctx, slog.LevelDebug)
}

func (h stackHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, slog.LevelDebug, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(shorten(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func shorten(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		if s := v.String(); len(s) > maxStackAttr {
			return slog.String(a.Key, s[:maxStackAttr]+"…")
		}
	case slog.KindGroup:
		attrs := v.Group()
		cut := make([]slog.Attr, len(attrs))
		for i, x := range attrs {
			cut[i] = shorten(x)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(cut...)}
	case slog.KindAny:
		if s := v.String(); len(s) > maxStackAttr {
			return slog.String(a.Key, s[:maxStackAttr]+"…")
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h stackHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	cut := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		cut[i] = shorten(a)
	}
	return stackHandler{inner: h.inner.WithAttrs(cut)}
}

func (h stackHandler) WithGroup(name string) slog.Handler {
	return stackHandler{inner: h.inner.WithGroup(name)}
}
