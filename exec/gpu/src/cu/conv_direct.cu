int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{n}}) return;
int ox = i % {{ow}}; int t = i / {{ow}}; int oy = t % {{oh}}; t /= {{oh}}; int oc = t % {{oc}}; int b = t / {{oc}};
int grp = oc / {{ocg}};
float acc = 0.0f;
for (int ic = 0; ic < {{icg}}; ic++) {
  const float* xp = p1 + ((long long)(b * {{cin}} + grp * {{icg}} + ic)) * {{hw}};
  const float* wp = p2 + ((long long)(oc * {{icg}} + ic)) * {{khw}};
  for (int ky = 0; ky < {{kh}}; ky++) {
    int iy = oy * {{sh}} - {{pt}} + ky * {{dh}};
    if (iy < 0 || iy >= {{h}}) continue;
    for (int kx = 0; kx < {{kw}}; kx++) {
      int ix = ox * {{sw}} - {{pl}} + kx * {{dw}};
      if (ix < 0 || ix >= {{w}}) continue;
      acc += xp[iy * {{w}} + ix] * wp[ky * {{kw}} + kx];
    }
  }
}
float v = acc;
{{epilogue}}p0[i] = v;
