# seed
@problemName x
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@seriesLength 3
@classLabel true a b c
@data
1,2,3:4,5,6:b
7,8,?:9,10,?:a
0.5:1:c
