"""Session 8: the LM pre-trained on oracle facts, then a fresh video ET-Proj aligned to it with the LM frozen.

    NOISE=0.3 python aligned.py FOLDER A_STEPS B_STEPS B_BATCH

FOLDER: a `pretrain_video.py` folder (base, clips, key frames, trained `video_encoder.pt`). Phase A: the LM
(re-initialised as the demo base does, embeddings frozen) learns to answer every question of 16 fresh scenes per
step from the scenes' facts as one-hots through a trained linear table into all 4 video tokens; the image tokens are
Gaussian noise of std NOISE. Phase B: the LM and table frozen, the base's video ET-Proj (random) learns, on single
questions of the folder's training clips, to map the frozen VideoMamba's tokens of each key frame to what the LM
reads; held-out: the folder's 300 held-out clips. The design `training/demo_model.py` adopted (with zero image tokens).
"""
import sys, json, random, torch, time, os
from pathlib import Path
from transformers import AutoModel, AutoProcessor
from mobilevideogpt.training.demo_model import init_small_language_model
from mobilevideogpt.training.synth import make_scene, questions
from single import FACT_CLASSES, conversation, fit, pad, scene_facts, train_lm_only, accuracy
torch.set_num_threads(2)
W=Path(sys.argv[1]); A_STEPS,B_STEPS,BB=map(int,sys.argv[2:5]); NOISE=float(os.environ.get('NOISE',0.3))
processor=AutoProcessor.from_pretrained(W/'base',trust_remote_code=True)
model=AutoModel.from_pretrained(W/'base',trust_remote_code=True); m=model.model
m.video_encoder.load_state_dict(torch.load(W/'video_encoder.pt',weights_only=True)); m.video_encoder.eval()
torch.manual_seed(0); init_small_language_model(model); train_lm_only(model)
width=128; IMG=m.config.num_frames*m.config.image_tokens_per_frame; VID=4
table=torch.nn.Linear(sum(FACT_CLASSES),width)
def facts(scene): return torch.cat([torch.nn.functional.one_hot(torch.tensor(v),n).float() for v,n in zip(scene_facts(scene),FACT_CLASSES)])
g=torch.Generator().manual_seed(1)
def visual(video):
    return torch.cat([torch.randn(video.shape[0],IMG,width,generator=g)*NOISE, video],1)
def runA(batch):
    ids,lab,att=pad(batch); video=table(torch.stack([b[2] for b in batch]))[:,None].expand(-1,VID,-1)
    return model(input_ids=ids,attention_mask=att,video_features=visual(video),labels=lab),lab
rng=random.Random(0)
def draw():
    batch=[]
    for _ in range(16):
        s=make_scene(rng); qs=questions(s,rng); batch+=[(*conversation(processor,[q]),facts(s),q[0]) for q in qs]
    return batch
hr=random.Random(10_000); held=[]
for _ in range(100):
    s=make_scene(hr); held+=[(*conversation(processor,[q]),facts(s),q[0]) for q in questions(s,hr)]
params=[p for p in model.parameters() if p.requires_grad]+list(table.parameters())
fit(runA,params,draw,held,A_STEPS,'A')
print('A final', accuracy(runA,held), flush=True)
# phase B: LM frozen, fresh video projector on real VideoMamba patch tokens
model.requires_grad_(False); proj=m.video_projector; proj.requires_grad_(True)
def tokens(split):
    X=torch.load(W/f'{split}_keys.pt',weights_only=True)[0]; out=[]
    with torch.no_grad():
        for i in range(0,len(X),256): out.append(m.video_encoder(X[i:i+256].float())[:,1:])
    return torch.cat(out)  # (N, 16, 64)
def singles(split,T):
    recs=json.loads((W/split/'data.json').read_text()); items=[]
    for c,r in enumerate(recs):
        t=r['conversations']
        for k,kind in enumerate(r['types']):
            items.append((*conversation(processor,[(kind,t[2*k]['value'].replace('<video>\n',''),t[2*k+1]['value'])]),T[c],kind))
    return items
tr=singles('train',tokens('train')); te=singles('held',tokens('held')); print('records',len(tr),len(te),flush=True)
def runB(batch):
    ids,lab,att=pad(batch); x=torch.stack([b[2] for b in batch])  # (B,16,64)
    video=proj(x.reshape(-1,4,x.shape[-1])).reshape(len(batch),VID,width)
    return model(input_ids=ids,attention_mask=att,video_features=visual(video),labels=lab),lab
r2=random.Random(0)
print('B start', accuracy(runB,te),flush=True)
fit(runB,list(proj.parameters()),lambda: r2.sample(tr,BB),te,B_STEPS,'B')
print('B final', accuracy(runB,te), flush=True)
