int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{rows}}) return;
int si = i % {{s}}; int hi = (i / {{s}}) % {{h}}; int bi = i / ({{s}} * {{h}});
const float* q = p1 + ((long long)(bi * {{s}} + si)) * {{row_q}} + hi * {{d}};
float acc[{{d}}];
for (int di = 0; di < {{d}}; di++) acc[di] = 0.0f;
float m = -(1.0f/0.0f), den = 0.0f;
for (int ti = 0; ti < {{t}}; ti++) {
  const float* kr = {{kp}} + ((long long)(bi * {{t}} + ti)) * {{row_kv}} + {{koff}} + hi * {{d}};
  const float* vr = {{vp}} + ((long long)(bi * {{t}} + ti)) * {{row_kv}} + {{voff}} + hi * {{d}};
  float dot = 0.0f;
  for (int di = 0; di < {{d}}; di++) dot += q[di] * kr[di];
  float l = {{scale}} * dot{{mask}};
  float mn = fmaxf(m, l);
  float c = expf(m - mn), e = expf(l - mn);
  den = den * c + e;
  for (int di = 0; di < {{d}}; di++) acc[di] = acc[di] * c + e * vr[di];
  m = mn;
}
float* o = p0 + ((long long)(bi * {{s}} + si)) * {{hd}} + hi * {{d}};
for (int di = 0; di < {{d}}; di++) o[di] = acc[di] / den;
