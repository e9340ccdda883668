int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{n}}) return;
const int W = {{w}};
int ox = i % {{ow}}; int t = i / {{ow}}; int oy = t % {{oh}}; int plane = t / {{oh}};
const float* xp = p1 + (long long)plane * {{hw}};
{{window}}
(void)count;
{{reduce}}
