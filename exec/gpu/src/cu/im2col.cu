int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{col_floats}}) return;
int j = i % {{ohw}}; int t = i / {{ohw}}; int r = t % {{rows}}; int b = t / {{rows}};
int ox = j % {{ow}}, oy = j / {{ow}};
int kx = r % {{kw}}, ky = (r / {{kw}}) % {{kh}}, ic = r / {{khw}};
int iy = oy * {{sh}} - {{pt}} + ky * {{dh}}, ix = ox * {{sw}} - {{pl}} + kx * {{dw}};
p0[i] = (iy >= 0 && iy < {{h}} && ix >= 0 && ix < {{w}})
    ? p1[((long long)(b * {{cin}} + ic) * {{h}} + iy) * {{w}} + ix] : 0.0f;
