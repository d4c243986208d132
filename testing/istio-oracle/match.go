package oracle

import (
	"net/url"
	"regexp"
	"strings"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// matchRoute returns the first route whose match holds for the request, as
// Envoy's route table does: path specifier, case sensitivity, headers and query
// parameters (envoy/config/route/v3/route_components.proto, RouteMatch).
func matchRoute(routes []*route.Route, r request) *route.Route {
	for _, candidate := range routes {
		if routeMatches(candidate.GetMatch(), r) {
			return candidate
		}
	}
	return nil
}

func routeMatches(m *route.RouteMatch, r request) bool {
	path, query, _ := strings.Cut(r.path, "?")
	caseSensitive := m.GetCaseSensitive() == nil || m.GetCaseSensitive().GetValue()
	fold := func(s string) string {
		if caseSensitive {
			return s
		}
		return strings.ToLower(s)
	}
	switch p := m.GetPathSpecifier().(type) {
	case *route.RouteMatch_Prefix:
		if !strings.HasPrefix(fold(path), fold(p.Prefix)) {
			return false
		}
	case *route.RouteMatch_Path:
		if fold(path) != fold(p.Path) {
			return false
		}
	case *route.RouteMatch_SafeRegex:
		if !fullMatch(p.SafeRegex.GetRegex(), path) {
			return false
		}
	case *route.RouteMatch_PathSeparatedPrefix:
		prefix := fold(p.PathSeparatedPrefix)
		if !(fold(path) == prefix || strings.HasPrefix(fold(path), prefix+"/")) {
			return false
		}
	case nil:
	default:
		return false
	}
	for _, h := range m.GetHeaders() {
		if !headerMatches(h, r.headers) {
			return false
		}
	}
	if len(m.GetQueryParameters()) > 0 {
		values, _ := url.ParseQuery(query)
		for _, q := range m.GetQueryParameters() {
			got, present := values[q.GetName()]
			switch {
			case q.GetPresentMatch():
				if !present {
					return false
				}
			case q.GetStringMatch() != nil:
				if !present || !stringMatches(q.GetStringMatch(), got[0]) {
					return false
				}
			}
		}
	}
	if m.GetGrpc() != nil && !strings.HasPrefix(r.headers["content-type"], "application/grpc") {
		return false
	}
	return true
}

// headerMatches follows config.route.v3.HeaderMatcher, including invert_match and
// treat_missing_header_as_empty.
func headerMatches(h *route.HeaderMatcher, headers map[string]string) bool {
	value, present := headers[strings.ToLower(h.GetName())]
	if !present && h.GetTreatMissingHeaderAsEmpty() {
		value, present = "", true
	}
	var matched bool
	switch spec := h.GetHeaderMatchSpecifier().(type) {
	case *route.HeaderMatcher_PresentMatch:
		matched = present == spec.PresentMatch
		if h.GetInvertMatch() {
			return !matched
		}
		return matched
	case *route.HeaderMatcher_StringMatch:
		matched = present && stringMatches(spec.StringMatch, value)
	case *route.HeaderMatcher_ExactMatch:
		matched = present && value == spec.ExactMatch
	case *route.HeaderMatcher_PrefixMatch:
		matched = present && strings.HasPrefix(value, spec.PrefixMatch)
	case *route.HeaderMatcher_SuffixMatch:
		matched = present && strings.HasSuffix(value, spec.SuffixMatch)
	case *route.HeaderMatcher_ContainsMatch:
		matched = present && strings.Contains(value, spec.ContainsMatch)
	case *route.HeaderMatcher_SafeRegexMatch:
		matched = present && fullMatch(spec.SafeRegexMatch.GetRegex(), value)
	case nil:
		matched = present
	}
	if h.GetInvertMatch() {
		// Envoy: an inverted matcher still fails when the header is absent, unless present_match.
		return present && !matched
	}
	return matched
}

// stringMatches follows type.matcher.v3.StringMatcher.
func stringMatches(m *matcher.StringMatcher, value string) bool {
	if m == nil {
		return true
	}
	v := value
	fold := func(s string) string {
		if m.GetIgnoreCase() {
			return strings.ToLower(s)
		}
		return s
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcher.StringMatcher_Exact:
		return fold(v) == fold(p.Exact)
	case *matcher.StringMatcher_Prefix:
		return strings.HasPrefix(fold(v), fold(p.Prefix))
	case *matcher.StringMatcher_Suffix:
		return strings.HasSuffix(fold(v), fold(p.Suffix))
	case *matcher.StringMatcher_Contains:
		return strings.Contains(fold(v), fold(p.Contains))
	case *matcher.StringMatcher_SafeRegex:
		return fullMatch(p.SafeRegex.GetRegex(), v)
	}
	return false
}

// fullMatch: Envoy's RE2 regexes match the whole value.
func fullMatch(expression, value string) bool {
	re, err := regexp.Compile("^(?:" + expression + ")$")
	return err == nil && re.MatchString(value)
}
