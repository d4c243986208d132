package oracle

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
)

// validateAll checks every resource as Envoy does on ingest: the protoc-gen-validate
// rules (go-control-plane's generated ValidateAll), applied again inside every
// typed_config (an Any, which ValidateAll does not open), plus a report of each
// deprecated field that is set. Returns one line per problem, naming the resource and field.
func validateAll(d *decoded, istio *decoded) []string {
	// Istio's own output tells which deprecated fields it still uses (max_grpc_timeout, say), and which
	// rules it breaks itself (proxyless gRPC's API listeners have no stat_prefix: gRPC is not Envoy and
	// never applies these rules): those are not Weft's to change.
	used := map[string]bool{}
	for _, problem := range validate(istio) {
		if problem.deprecated != "" {
			used[problem.deprecated] = true
		}
		if problem.rule != "" {
			used[problem.rule] = true
		}
	}
	out := []string{}
	for _, problem := range validate(d) {
		if (problem.deprecated != "" && used[problem.deprecated]) || (problem.rule != "" && used[problem.rule]) {
			continue
		}
		out = append(out, problem.text)
	}
	return out
}

type problem struct {
	text string
	// deprecated is the full name of the deprecated field set, if that is the problem.
	deprecated string
	// rule is the broken validation rule alone, without the resource's path.
	rule string
}

func validate(d *decoded) []problem {
	problems := []problem{}
	for _, l := range d.listeners {
		check(l, "listener "+l.Name, &problems)
	}
	for _, c := range d.clusters {
		check(c, "cluster "+c.Name, &problems)
	}
	for _, r := range d.routes {
		check(r, "route "+r.Name, &problems)
	}
	for _, e := range d.endpoints {
		check(e, "endpoints "+e.ClusterName, &problems)
	}
	return problems
}

type validator interface{ ValidateAll() error }

func check(m proto.Message, where string, problems *[]problem) {
	if v, ok := m.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			*problems = append(*problems, problem{text: fmt.Sprintf("%s: %v", where, err), rule: err.Error()})
		}
	}
	walk(m.ProtoReflect(), where, problems)
}

// walk visits set fields: deprecated ones are reported, Any values are opened and checked.
func walk(m protoreflect.Message, where string, problems *[]problem) {
	if m.Descriptor().FullName() == "google.protobuf.Any" {
		a, ok := m.Interface().(*anypb.Any)
		if !ok {
			return
		}
		inner, err := a.UnmarshalNew()
		if err != nil {
			*problems = append(*problems, problem{text: fmt.Sprintf("%s: typed config %s cannot be read: %v", where, a.GetTypeUrl(), err)})
			return
		}
		check(inner, fmt.Sprintf("%s<%s>", where, inner.ProtoReflect().Descriptor().FullName()), problems)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		path := where + "." + string(fd.Name())
		if options, ok := fd.Options().(*descriptorpb.FieldOptions); ok && options.GetDeprecated() {
			*problems = append(*problems, problem{text: path + ": deprecated field is set", deprecated: string(fd.FullName())})
		}
		switch {
		case fd.IsList() && fd.Message() != nil:
			list := v.List()
			for i := 0; i < list.Len(); i++ {
				walk(list.Get(i).Message(), fmt.Sprintf("%s[%d]", path, i), problems)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				walk(mv.Message(), fmt.Sprintf("%s[%s]", path, k.String()), problems)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			walk(v.Message(), path, problems)
		}
		return true
	})
}
