int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{n}}) return;
int ox = i % {{ow}}; int t = i / {{ow}}; int oy = t % {{oh}}; t /= {{oh}}; int oc = t % {{oc}}; int b = t / {{oc}};
int grp = oc / {{ocg}}, o = oc % {{ocg}};
float acc = 0.0f;
for (int ky = 0; ky < {{kh}}; ky++) {
  int ty = oy + {{pt}} - ky * {{dh}};
  if (ty < 0 || ty % {{sh}} != 0) continue;
  int iy = ty / {{sh}};
  if (iy >= {{h}}) continue;
  for (int kx = 0; kx < {{kw}}; kx++) {
    int tx = ox + {{pl}} - kx * {{dw}};
    if (tx < 0 || tx % {{sw}} != 0) continue;
    int ix = tx / {{sw}};
    if (ix >= {{w}}) continue;
    for (int ic = 0; ic < {{icg}}; ic++) {
      int cg = grp * {{icg}} + ic;
      acc += p1[((long long)(b * {{ci}} + cg) * {{h}} + iy) * {{w}} + ix]
           * p2[((long long)(cg * {{ocg}} + o) * {{kh}} + ky) * {{kw}} + kx];
    }
  }
}
{{bias}}
p0[i] = acc;
