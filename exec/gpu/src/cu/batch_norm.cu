int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{n}}) return;
int ch = (i / {{inner}}) % {{c}};
p0[i] = (p1[i] - p4[ch]) * rsqrtf(p5[ch] + {{eps}}) * p2[ch] + p3[ch];
