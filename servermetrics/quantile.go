package servermetrics

import "math"

// BucketQuantile estimates the q-quantile (0 < q < 1) of the observations
// counted in cumulative buckets with the given upper bounds (increasing,
// the last one +Inf), the way Prometheus's histogram_quantile does: find
// the bucket the rank falls in and interpolate linearly inside it. It
// also returns that bucket's bounds, since the estimate is only as fine
// as they are. The lower bound of the first bucket is 0 when its upper
// bound is positive. A rank in the +Inf bucket gives the highest finite
// bound, with an upper bound of +Inf. ok is false when there is nothing
// to estimate from.
func BucketQuantile(q float64, bounds, cumulative []float64) (value, lower, upper float64, ok bool) {
	n := len(bounds)
	if n == 0 || len(cumulative) != n || !(q > 0 && q < 1) {
		return 0, 0, 0, false
	}
	total := cumulative[n-1]
	if !(total > 0) {
		return 0, 0, 0, false
	}
	rank := q * total
	b := 0
	for b < n-1 && cumulative[b] < rank {
		b++
	}
	if math.IsInf(bounds[b], 1) {
		if b == 0 {
			return 0, 0, 0, false
		}
		return bounds[b-1], bounds[b-1], bounds[b], true
	}
	lower, upper = 0, bounds[b]
	below := 0.0
	if b > 0 {
		lower, below = bounds[b-1], cumulative[b-1]
	} else if upper <= 0 {
		return upper, upper, upper, true
	}
	in := cumulative[b] - below
	if in <= 0 {
		return upper, lower, upper, true
	}
	return lower + (upper-lower)*(rank-below)/in, lower, upper, true
}
